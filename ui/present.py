"""Turn engine objects (reports, events, snapshots) into tables, plots and sentences for the page."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine import (
    BASE_CHOICE,
    DatasetCheck,
    DatasetReport,
    Event,
    LogEvent,
    RunPlan,
    RunSnapshot,
    RunState,
    diagnose,
    plan_lines,
    render_error,
    smooth,
)
from engine import duration as _duration
from ui.i18n import t

SMOOTHING = 0.6  # TensorBoard's default weight: smooth enough to read, little lag on short runs


def adapter_choices(choices: list, lang: str, base: bool = False) -> list[tuple[str, str]]:
    """(label, value) pairs for an adapter picker, worded in `lang`: a run's final adapter by its id, a checkpoint
    with its step; with `base`, the base model first (a comparison's baseline can be the model without adapter)."""
    first = [(side_label(BASE_CHOICE, lang), BASE_CHOICE)] if base else []
    return first + [(c.run_id if c.step is None else f"{c.run_id} · {t('checkpoint_at_step', lang, step=c.step)}",
                     c.value) for c in choices]


def side_label(side: Any, lang: str) -> str:
    """How one side of a comparison is named in `lang`: the base model, "run X" for a run's final adapter, "run X ·
    step N" for a checkpoint. `side` is a study's side (a dict with `run_id` and `step`, run_id None for the base
    model), an adapter choice (with `run_id` and `step`), or a picker's value (the base model's; any other value is
    named as it is)."""
    if isinstance(side, str):
        return t("side_base", lang) if side == BASE_CHOICE else side
    run_id, step = (side.get("run_id"), side.get("step")) if isinstance(side, dict) else (side.run_id, side.step)
    if run_id is None:
        return t("side_base", lang)
    return t("side_run", lang, run=run_id) if step is None else t("side_run_step", lang, run=run_id, step=step)


def issue_rows(report: DatasetReport, lang: str) -> list[list[Any]]:
    """One table row per problem of the report (errors first): severity, row, field, message."""
    return [[t(f"severity_{i.severity}", lang), i.row if i.row is not None else "", i.field or "",
             i.to_dict(lang)["message"]] for i in report.errors + report.warnings]


def issue_headers(lang: str) -> list[str]:
    """The problems table's column titles."""
    return [t(key, lang) for key in ("col_severity", "col_row", "col_field", "col_message")]


def dataset_summary(result: DatasetCheck, lang: str) -> str:
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


def metric_points(events: list[Event]) -> list[dict[str, Any]]:
    """The log events' payloads with their time, for plots, progress and the diagnosis."""
    return [{**event.payload(), "time": event.time} for event in events if isinstance(event, LogEvent)]


def _series(points: list[dict[str, Any]], key: str) -> tuple[list, list]:
    chosen = [p for p in points if p.get(key) is not None]
    return [p["step"] for p in chosen], [p[key] for p in chosen]


def loss_figure(points: list[dict[str, Any]], lang: str, overlay: list[dict[str, Any]] | None = None,
                overlay_name: str = "") -> go.Figure:
    """Training loss (raw and smoothed) and eval loss on one axis; optionally another run's losses."""
    figure = go.Figure()
    steps, losses = _series(points, "loss")
    figure.add_trace(go.Scatter(x=steps, y=losses, mode="lines", name=t("plot_loss", lang), opacity=0.35))
    figure.add_trace(go.Scatter(x=steps, y=smooth(losses, SMOOTHING), mode="lines", name=t("plot_smoothed", lang)))
    eval_steps, eval_losses = _series(points, "eval_loss")
    figure.add_trace(go.Scatter(x=eval_steps, y=eval_losses, mode="lines+markers", name=t("plot_eval_loss", lang)))
    if overlay:
        for key, name in (("loss", "plot_loss"), ("eval_loss", "plot_eval_loss")):
            xs, ys = _series(overlay, key)
            ys = smooth(ys, SMOOTHING) if key == "loss" else ys
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(dash="dot"),
                                        name=f"{overlay_name}: {t(name, lang)}"))
    figure.update_layout(xaxis_title=t("plot_step", lang), yaxis_title=t("loss_plot", lang),
                         margin=dict(l=40, r=10, t=30, b=40), height=360, legend=dict(orientation="h"))
    return figure


# A DPO run's reward charts: (panel title, the series drawn in it)
REWARD_PANELS = (("plot_rewards", ("rewards_chosen", "rewards_rejected", "rewards_margins")),
                 ("plot_reward_accuracy", ("rewards_accuracies", "eval_rewards_accuracies")))


def metrics_figure(points: list[dict[str, Any]], lang: str) -> go.Figure:
    """Learning rate, gradient norm, tokens per second and memory, one small chart each; for a DPO run (its points
    carry rewards) a third row with the rewards of the chosen and rejected answers, their margin, and the reward
    accuracy on the training and held-out pairs."""
    panels = (("learning_rate", "plot_lr"), ("grad_norm", "plot_grad_norm"),
              ("tokens_per_second", "plot_tokens_per_second"), ("memory_mb", "plot_memory"))
    dpo = any(p.get("rewards_margins") is not None for p in points)
    rewards = REWARD_PANELS if dpo else ()
    titles = [t(name, lang) for _key, name in panels] + [t(name, lang) for name, _keys in rewards]
    figure = make_subplots(rows=3 if dpo else 2, cols=2, subplot_titles=titles)
    for index, (key, _name) in enumerate(panels):
        xs, ys = _series(points, key)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", showlegend=False), row=index // 2 + 1, col=index % 2 + 1)
    for column, (_title, keys) in enumerate(rewards, start=1):
        for key in keys:
            xs, ys = _series(points, key)
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if key.startswith("eval_") else "lines",
                                        name=t(f"plot_{key}", lang)), row=3, col=column)
    figure.update_layout(margin=dict(l=40, r=10, t=40, b=30), height=630 if dpo else 420)
    return figure


def progress_text(snapshot: RunSnapshot, points: list[dict[str, Any]], lang: str) -> str:
    """Step, epoch, elapsed time and the time left, from the run's log times."""
    timed = [p for p in points if p.get("loss") is not None]
    if not timed or not snapshot.max_steps:
        return ""
    done = snapshot.step / snapshot.max_steps
    elapsed = timed[-1]["time"] - timed[0]["time"]
    steps_timed = timed[-1]["step"] - timed[0]["step"]
    left = (snapshot.max_steps - snapshot.step) * elapsed / steps_timed if steps_timed > 0 else None
    bar = "█" * int(done * 20) + "░" * (20 - int(done * 20))
    eta = _duration(left) if left is not None and snapshot.state.is_live else "-"
    return t("progress_line", lang, bar=bar, pct=int(done * 100), step=snapshot.step, max_steps=snapshot.max_steps,
             epoch=snapshot.epoch, elapsed=_duration(elapsed), eta=eta)


def diagnosis_text(points: list[dict[str, Any]], lang: str, finished: bool = False) -> str:
    """What the curves say (a bold finding and its advice), from the run's log points; for a `finished` run (done
    or stopped), its result."""
    found = diagnose(points, finished)
    return f"**{t(found.title_code, lang, **found.params)}** {t(found.advice_code, lang, **found.params)}"


def runs_table(runs: list, lang: str) -> pd.DataFrame:
    """Past runs with their state, steps, final losses, duration and whether an adapter exists."""
    columns = [t(key, lang) for key in ("col_run", "col_state", "col_steps", "col_loss", "col_eval_loss",
                                          "col_duration", "col_adapter")]
    rows = [[run.run_id, t(f"state_{run.state.value}", lang), run.step, _number(run.last_loss),
             _number(run.last_eval_loss), _duration(run.duration), "✓" if run.has_adapter else ""] for run in runs]
    return pd.DataFrame(rows, columns=columns)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def status_text(snapshot: RunSnapshot, lang: str) -> str:
    """The run's status line: state, step and losses, the slow step while loading, why it failed (with the last
    lines of train.log folded away when the worker died)."""
    if snapshot.run_id is None or snapshot.state is RunState.IDLE:
        return t("status_idle", lang)

    line = t("status_line", lang, state=t(f"state_{snapshot.state.value}", lang), run_id=snapshot.run_id,
             step=snapshot.step, max_steps=snapshot.max_steps or "?", epoch=snapshot.epoch,
             loss=_number(snapshot.last_loss), eval_loss=_number(snapshot.last_eval_loss))
    if snapshot.state is RunState.LOADING and snapshot.progress:
        line += f"\n\n⏳ {t(snapshot.progress, lang)}…"
    if snapshot.error:
        line += "\n\n" + render_error(snapshot.error.to_error(), lang)
        tail = snapshot.error.params.get("log_tail")
        if tail:  # a crash's last words, one click away, never in the sentence itself
            line += f"\n\n<details><summary>{t('status_log_tail', lang)}</summary>\n\n```text\n{tail}\n```\n</details>"
    if snapshot.skipped_lines:
        line += "\n\n⚠ " + t("events_lines_skipped", lang, count=snapshot.skipped_lines,
                               path=f"{snapshot.run_id}/events.jsonl")
    return line


def plan_markdown(plan: RunPlan, lang: str) -> str:
    """The pre-training check as a Markdown list (the same lines `train --dry-run` prints)."""
    return "\n".join(f"- {line}" if not line.startswith("  ") else line for line in plan_lines(plan, lang))


def run_summary(plan: RunPlan, lang: str) -> str:
    """Markdown of the run *Start* would begin: the data (file, rows, tokens), the model, the main settings, the
    memory verdict and the time, then any problem that would stop it."""
    config, checked = plan.config, plan.dataset
    if checked is not None and checked.summary.tokens_per_epoch:
        data = t("summary_data", lang, file=Path(config.dataset_path).name, rows=checked.summary.rows,
                 tokens=f"{checked.summary.tokens_per_epoch:,}")
    elif checked is not None and checked.summary.rows:  # rows the token count does not cover (preference pairs)
        data = t("summary_data_rows", lang, file=Path(config.dataset_path).name, rows=checked.summary.rows)
    else:
        data = t("summary_no_data", lang)
    length = (t("summary_steps", lang, steps=config.max_steps) if config.max_steps > 0
              else t("summary_epochs", lang, epochs=f"{config.num_train_epochs:g}"))
    settings = t("summary_settings", lang, method=config.method.upper(), r=config.lora_r,
                 lr=f"{config.learning_rate:g}", length=length, max_length=config.max_length)
    lines = [t("summary_title", lang), "- " + data, "- " + t("summary_model", lang, model=config.model_name_or_path),
             "- " + settings, "- " + _estimate_line(plan, lang)]
    lines += [f"- ❌ {issue.to_dict(lang)['message']}" for issue in plan.errors]
    return "\n".join(lines)


def _estimate_line(plan: RunPlan, lang: str) -> str:
    """The memory verdict (fits / tight / will not fit) and the run's time: per epoch, and in all."""
    memory, timed = plan.memory, plan.time
    fits = t(f"summary_{memory.verdict}", lang, total_gb=f"{memory.total / 2 ** 30:.1f}",
             available_gb=f"{memory.available / 2 ** 30:.1f}") if memory is not None else t("summary_no_estimate", lang)
    if timed is None:
        return fits
    key = "summary_time_measured" if timed.source == "measured" or plan.measured_start else "summary_time"
    return fits + " · " + t(key, lang, epoch=_duration(timed.seconds_per_epoch),
                            total=_duration(_run_seconds(plan) + plan.start_seconds),
                            start=_duration(plan.start_seconds))


def _run_seconds(plan: RunPlan) -> float:
    """The whole run's time: its epochs' worth, or its steps' share of an epoch when `max_steps` caps it."""
    config, seconds = plan.config, plan.time.seconds_per_epoch
    if config.max_steps <= 0:
        return seconds * config.num_train_epochs
    rows = plan.dataset.summary.rows if plan.dataset is not None else 0
    batch = config.per_device_train_batch_size * config.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(rows / batch))
    return seconds * config.max_steps / steps_per_epoch
