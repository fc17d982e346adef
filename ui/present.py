"""Turn engine objects (reports, events, snapshots) into tables, plots and sentences for the page."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from engine.data import DatasetReport, first_question
from engine.errors import EngineError
from engine.events import Event, RunSnapshot, RunState
from engine.messages import render_error
from ui.i18n import t

PREVIEW_ROWS = 50


def issue_rows(report: DatasetReport, lang: str) -> list[list[Any]]:
    return [[t(f"severity_{i.severity}", lang), i.row if i.row is not None else "", i.field or "",
             i.to_dict(lang)["message"]] for i in report.errors + report.warnings]


def issue_headers(lang: str) -> list[str]:
    return [t(key, lang) for key in ("col_severity", "col_row", "col_field", "col_message")]


def preview_rows(report: DatasetReport) -> list[list[Any]]:
    """Row number, question and answer of the first usable rows, as the model will see them."""
    rows = []
    for number, example in list(zip(report.example_rows, report.examples))[:PREVIEW_ROWS]:
        answer = example["completion"][0]["content"] if "completion" in example else ""
        rows.append([number, first_question(example), answer])
    return rows


def dataset_summary(result, lang: str) -> str:
    """Markdown for a DatasetCheck: counts, verdict, languages and token figures."""
    report, summary = result.report, result.summary
    head = t("dataset_summary", lang, path=report.path, format=report.format or "?", rows=len(report.rows),
             usable=len(report.examples), errors=len(report.errors), warnings=len(report.warnings))
    languages = summary.languages
    head += "\n\n" + t("dataset_languages", lang, zh=languages.get("zh", 0), en=languages.get("en", 0),
                        other=languages.get("other", 0))
    if summary.token_lengths:
        head += " " + t("dataset_tokens", lang, tokens=summary.tokens_per_epoch, longest=max(summary.token_lengths),
                        truncated=summary.truncated_rows, max_length=summary.max_length)
    if not report.usable:
        verdict = t("dataset_bad", lang)
    elif report.errors:
        verdict = t("dataset_some_bad", lang)
    else:
        verdict = t("dataset_ok", lang)
    return f"{head}\n\n{verdict}"


def length_histogram(summary, lang: str) -> go.Figure:
    """Token lengths of the rows against the max length (a dashed line)."""
    figure = go.Figure(go.Histogram(x=summary.token_lengths, nbinsx=40, name=t("length_rows", lang)))
    if summary.max_length and summary.token_lengths:
        figure.add_vline(x=summary.max_length, line_dash="dash", line_color="red",
                         annotation_text=f"max_length {summary.max_length}")
    figure.update_layout(xaxis_title=t("length_tokens", lang), yaxis_title=t("length_rows", lang),
                         margin=dict(l=40, r=10, t=30, b=40), height=260, showlegend=False)
    return figure


def error_message(error: EngineError, lang: str) -> str:
    return render_error(error, lang)


def metric_points(events: list[Event]) -> list[dict[str, Any]]:
    """The log events' data, for plotting."""
    return [event.data for event in events if event.kind == "log"]


def loss_figure(points: list[dict[str, Any]], lang: str) -> go.Figure:
    figure = go.Figure()
    for key, name in (("loss", "plot_loss"), ("eval_loss", "plot_eval_loss")):
        xs = [p["step"] for p in points if p.get(key) is not None]
        ys = [p[key] for p in points if p.get(key) is not None]
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=t(name, lang)))
    figure.update_layout(xaxis_title=t("plot_step", lang), yaxis_title=t("loss_plot", lang),
                         margin=dict(l=40, r=10, t=30, b=40), height=360, legend=dict(orientation="h"))
    return figure


def status_text(snapshot: RunSnapshot, lang: str) -> str:
    if snapshot.run_id is None or snapshot.state is RunState.IDLE:
        return t("status_idle", lang)

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    line = t("status_line", lang, state=t(f"state_{snapshot.state.value}", lang), run_id=snapshot.run_id,
             step=snapshot.step, max_steps=snapshot.max_steps or "?", epoch=snapshot.epoch,
             loss=number(snapshot.last_loss), eval_loss=number(snapshot.last_eval_loss))
    if snapshot.state is RunState.LOADING and snapshot.progress:
        line += f"\n\n⏳ {t(snapshot.progress, lang)}…"
    if snapshot.error:
        error = EngineError(snapshot.error.get("code", "train_failed"), snapshot.error.get("params", {}),
                            snapshot.error.get("hint"))
        line += "\n\n" + error_message(error, lang)
    return line
