"""The run report: one self-contained HTML file per run (`runs/<id>/report.html`, plotly.js embedded once, no
network needed to open it) in English or Chinese, telling what was trained and how it was judged: the data check,
the main settings, the curves and their diagnosis, the estimate against what happened, sample answers base vs
adapter, and the blind-study results with their intervals and the raters' agreement."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from engine.config import TrainConfig
from engine.export.card import SETTINGS, StudySummary
from engine.export.report_html import charts_html, page, section, table
from engine.locales import catalogue_text, render
from engine.planning.plan_text import duration
from engine.system.files import write_text_atomic
from engine.training.diagnosis import diagnose, smooth
from engine.training.events import Event, LogEvent, RunState, StatusEvent

REPORT_FILE = "report.html"
DATA_FIELDS = ("rows", "format", "tokens", "warnings", "truncated_rows")  # shown from ReportFacts.dataset, in order
CURVE_METRICS = ("learning_rate", "grad_norm", "mean_token_accuracy")  # drawn in the metrics chart when logged
MB_PER_GB = 1024


@dataclass
class ReportFacts:
    """Everything the report shows. `dataset`: the data check's figures (keys of DATA_FIELDS); `estimate`: the
    plan's prediction {"memory_gb", "seconds"}; `samples`: (prompt, base answer, adapter answer) triples;
    `agreement`: the study's rater agreement as `engine.study.stats.agreement` gives it."""

    lang: str
    run_id: str
    config: TrainConfig
    events: list[Event]
    dataset: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None
    samples: list[tuple[str, str, str]] = field(default_factory=list)
    study: StudySummary | None = None
    agreement: dict[str, Any] | None = None


def log_points(events: list[Event]) -> list[dict[str, Any]]:
    """The payloads of the run's log events, oldest first (what the diagnosis and the charts read)."""
    return [event.payload() for event in events if isinstance(event, LogEvent)]


def what_happened(events: list[Event]) -> dict[str, Any]:
    """The run's final state, its training time (first LOADING/TRAINING status to the last status) and its peak
    memory in GB (None when not recorded)."""
    statuses = [event for event in events if isinstance(event, StatusEvent)]
    started = next((event.time for event in statuses if event.state in (RunState.LOADING, RunState.TRAINING)), None)
    seconds = statuses[-1].time - started if started is not None and len(statuses) > 1 else None
    memory = [event.peak_memory_mb or event.memory_mb for event in events  # the peak, where the run recorded it
              if isinstance(event, LogEvent) and (event.peak_memory_mb or event.memory_mb)]
    return {"state": statuses[-1].state if statuses else RunState.IDLE, "seconds": seconds,
            "memory_gb": round(max(memory) / MB_PER_GB, 2) if memory else None}


def loss_figure(points: list[dict[str, Any]], lang: str):
    """The loss curve (raw, smoothed) with the eval loss; None when the run logged no loss."""
    import plotly.graph_objects as go

    train = [(p["step"], p["loss"]) for p in points if p.get("loss") is not None]
    evals = [(p["step"], p["eval_loss"]) for p in points if p.get("eval_loss") is not None]
    if not train and not evals:
        return None
    figure = go.Figure()
    if train:
        steps, losses = zip(*train)
        figure.add_scatter(x=steps, y=losses, name=render("report_loss", lang=lang), mode="lines",
                           line={"color": "#9db4d8"})
        figure.add_scatter(x=steps, y=smooth(list(losses)), name=render("report_smoothed", lang=lang), mode="lines",
                           line={"color": "#1f4e9c", "width": 3})
    if evals:
        figure.add_scatter(x=[s for s, _ in evals], y=[v for _, v in evals], name=render("report_eval_loss", lang=lang),
                           mode="lines+markers", line={"color": "#d2691e"})
    return _layout(figure, render("report_loss", lang=lang), lang)


def metrics_figure(points: list[dict[str, Any]], lang: str):
    """The other logged metrics (learning rate, gradient norm, token accuracy) in one chart each stacked; None when
    none was logged."""
    from plotly.subplots import make_subplots

    present = [name for name in CURVE_METRICS if any(p.get(name) is not None for p in points)]
    if not present:
        return None
    figure = make_subplots(rows=len(present), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=[render(f"report_{name}", lang=lang) for name in present])
    for row, name in enumerate(present, start=1):
        series = [(p["step"], p[name]) for p in points if p.get(name) is not None]
        figure.add_scatter(x=[s for s, _ in series], y=[v for _, v in series], mode="lines+markers",
                           name=render(f"report_{name}", lang=lang), row=row, col=1, showlegend=False)
    figure.update_layout(height=220 * len(present) + 60)
    figure = _layout(figure, None, lang, x_title=False)
    return figure.update_xaxes(title_text=render("report_step", lang=lang), row=len(present), col=1)


def study_figure(study: StudySummary, lang: str):
    """The adapter's win rate with its 95% interval against the 50% line (no difference)."""
    import plotly.graph_objects as go

    rate = study.win_rate * 100
    figure = go.Figure(go.Bar(x=[rate], y=[render("report_win_rate_axis", lang=lang)], orientation="h",
                              error_x={"type": "data", "symmetric": False, "array": [study.high * 100 - rate],
                                       "arrayminus": [rate - study.low * 100]}, marker={"color": "#1f4e9c"}))
    figure.add_vline(x=50, line_dash="dash", line_color="#888")
    figure.update_xaxes(range=[0, 100], ticksuffix="%")
    figure.update_layout(height=200)
    return _layout(figure, None, lang, x_title=False)


def _layout(figure, title: str | None, lang: str, x_title: bool = True):
    """The report's common chart look (white, compact margins, the step axis named)."""
    figure.update_layout(template="plotly_white", margin={"l": 50, "r": 20, "t": 40, "b": 40},
                         title=title, legend={"orientation": "h", "y": -0.2})
    if x_title:
        figure.update_xaxes(title_text=render("report_step", lang=lang))
    return figure


def data_section(facts: ReportFacts) -> str:
    """The data check's figures, or a line saying none was recorded."""
    lang, data = facts.lang, facts.dataset
    if not data:
        return section(render("report_data", lang=lang), _paragraph(render("report_no_data", lang=lang)))
    rows = [(render(f"report_data_{key}", lang=lang), data[key]) for key in DATA_FIELDS if data.get(key) is not None]
    body = table(rows) + _paragraph(render("report_dataset_file", {"path": facts.config.dataset_path}, lang))
    return section(render("report_data", lang=lang), body)


def config_section(facts: ReportFacts) -> str:
    """The run's main settings (the model, then the card's settings) with their catalogue labels."""
    names = ("model_name_or_path", *SETTINGS)
    rows = [(catalogue_text(f"field.{name}.label", facts.lang), _value(getattr(facts.config, name))) for name in names]
    return section(render("report_config", lang=facts.lang), table(rows))


def curves_section(facts: ReportFacts, figures: list) -> str:
    """The charts (drawn where they are placed) and the diagnosis of the curves, in words."""
    lang, points = facts.lang, log_points(facts.events)
    verdict = diagnose(points)
    words = (f"<p class='verdict'><b>{escape(render(verdict.title_code, verdict.params, lang))}</b></p>"
             + _paragraph(render(verdict.advice_code, verdict.params, lang)))
    body = charts_html(figures, "curves") if figures else _paragraph(render("report_no_curve", lang=lang))
    return section(render("report_curves", lang=lang), body + words)


def estimate_section(facts: ReportFacts) -> str:
    """The plan's predicted time and memory against the run's actual time, peak memory and final state."""
    lang, predicted, actual = facts.lang, facts.estimate or {}, what_happened(facts.events)
    header = ("", render("report_predicted", lang=lang), render("report_actual", lang=lang))
    rows = [(render("report_time", lang=lang), duration(predicted.get("seconds")), duration(actual["seconds"])),
            (render("report_memory", lang=lang), _gb(predicted.get("memory_gb")), _gb(actual["memory_gb"])),
            (render("report_state", lang=lang), "", render("state_" + actual["state"].value, lang=lang))]
    return section(render("report_estimate", lang=lang), table(rows, header))


def samples_section(facts: ReportFacts) -> str:
    """The sample prompts with the base model's and the adapter's answers side by side."""
    lang = facts.lang
    if not facts.samples:
        return section(render("report_samples", lang=lang), _paragraph(render("report_no_samples", lang=lang)))
    header = (render("report_prompt", lang=lang), render("report_base_answer", lang=lang),
              render("report_adapter_answer", lang=lang))
    return section(render("report_samples", lang=lang), table(facts.samples, header, css="samples"))


def study_section(facts: ReportFacts, figure_html: str) -> str:
    """The blind study's win rate with its interval, the votes, and the raters' agreement."""
    lang, study = facts.lang, facts.study
    if study is None:
        return section(render("report_study", lang=lang), _paragraph(render("report_no_study", lang=lang)))
    params = {"name": study.name, "rate": _percent(study.win_rate), "low": _percent(study.low),
              "high": _percent(study.high), "votes": study.n_votes, "ties": study.ties, "base_wins": study.base_wins,
              "raters": study.n_raters, "items": study.n_items, "baseline": baseline_words(study, lang)}
    body = "".join(_paragraph(render(code, params, lang)) for code in ("report_study_name", "report_win_rate",
                                                                       "report_votes"))
    return section(render("report_study", lang=lang), body + figure_html + agreement_html(facts.agreement, lang))


def baseline_words(study: StudySummary, lang: str) -> str:
    """What the study's adapter was judged against, in words: the base model, or a run (at its checkpoint's step)."""
    if study.baseline_run is None:
        return render("report_baseline_base", lang=lang)
    if study.baseline_step is None:
        return render("report_baseline_run", {"run": study.baseline_run}, lang)
    return render("report_baseline_checkpoint", {"run": study.baseline_run, "step": study.baseline_step}, lang)


def agreement_html(agreement: dict[str, Any] | None, lang: str) -> str:
    """Fleiss' kappa over the items every rater judged and Cohen's kappa per pair of raters, in words."""
    lines = []
    if agreement and agreement.get("fleiss") is not None:
        lines.append(render("report_agreement_fleiss", {"kappa": _kappa(agreement["fleiss"]),
                                                        "items": agreement.get("fleiss_items", 0)}, lang))
    for pair in (agreement or {}).get("cohen", []):
        first, second = pair["raters"]
        lines.append(render("report_agreement_pair", {"first": first, "second": second, "items": pair["items"],
                                                      "kappa": _kappa(pair["kappa"])}, lang))
    return "".join(_paragraph(line) for line in lines or [render("report_no_agreement", lang=lang)])


def render_report(facts: ReportFacts) -> str:
    """The report as one HTML page (every text escaped; plotly.js inline once, in the first chart)."""
    points = log_points(facts.events)
    curves = [figure for figure in (loss_figure(points, facts.lang), metrics_figure(points, facts.lang)) if figure]
    study = [study_figure(facts.study, facts.lang)] if facts.study else []
    curves_html = curves_section(facts, curves)
    study_html = study_section(facts, charts_html(study, "study", first=not curves) if study else "")
    body = "".join((data_section(facts), config_section(facts), curves_html, estimate_section(facts),
                    samples_section(facts), study_html))
    return page(render("report_title", {"run_id": facts.run_id}, facts.lang), facts.lang, body)


def write_report(run_dir: Path, facts: ReportFacts) -> Path:
    """Write the report to `run_dir / "report.html"` atomically and return its path."""
    path = Path(run_dir) / REPORT_FILE
    write_text_atomic(path, render_report(facts))
    return path


def _paragraph(text: str) -> str:
    """One escaped paragraph."""
    return f"<p>{escape(text)}</p>"


def _value(value: Any) -> str:
    """A config value as the settings table shows it (lists joined)."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _gb(value: float | None) -> str:
    """Gigabytes with two decimals, or '-' when unknown."""
    return "-" if value is None else f"{value:.2f} GB"


def _percent(value: float) -> str:
    """A fraction as a percentage with one decimal (no sign)."""
    return f"{value * 100:.1f}"


def _kappa(value: float | None) -> str:
    """A kappa with two decimals, or '-' when unknown or not finite."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"
