"""The blind study's results for the organiser: the unblinded verdict as text, chart and table, the
automatic metrics beside it, and the exports; each names the study's two sides (its baseline and its candidate)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from engine import OUTCOMES, EngineError, Studio, render_error
from ui.i18n import t
from ui.study_organise import chosen_study
from ui.study_sides import STATS_NAMES, outcome_label, sides_line, study_side_names
from ui.wiring import worded_errors


@dataclass
class ResultsView:
    """The organiser's result components that handlers fill."""

    summary: Any
    chart: Any
    groups: Any  # per-domain and per-rater table
    metrics: Any
    exported: Any


@worded_errors
def unblind_results(studio: Studio, view: ResultsView, lang: str, study_id: int | None) -> dict:
    """Inputs: language, study. Outputs: the summary, the outcome chart, the per-domain and per-rater table, each
    naming the study's two sides."""
    study_id = chosen_study(study_id, lang)
    names = study_side_names(studio.study(study_id), lang)
    stats = studio.study_statistics(study_id)
    return {view.summary: study_summary(stats, names, lang), view.chart: outcome_chart(stats, names, lang),
            view.groups: group_table(stats, names, lang)}


@worded_errors
def automatic_metrics(studio: Studio, view: ResultsView, lang: str, study_id: int | None) -> dict:
    """Inputs: language, study. Output: ROUGE-L/BLEU against the references and eval-split perplexity,
    baseline vs candidate (each by its name), shown beside the human verdict (a perplexity that cannot be measured
    says why)."""
    study_id = chosen_study(study_id, lang)
    names = study_side_names(studio.study(study_id), lang)
    scores = studio.study_reference_scores(study_id)
    if scores["adapter"]["n"]:
        lines = [t("metrics_reference", lang, side=names[key], n=scores[side]["n"], rouge=scores[side]["rouge_l"],
                   bleu=scores[side]["bleu"]) for key, side in STATS_NAMES]
    else:
        lines = [t("metrics_no_reference", lang)]
    try:
        losses = studio.study_perplexity(study_id)
        lines += [t("metrics_perplexity", lang, side=names[key], rows=losses[side]["rows"],
                    loss=losses[side]["loss"], ppl=losses[side]["perplexity"]) for key, side in STATS_NAMES]
    except EngineError as error:
        lines.append(render_error(error, lang))
    return {view.metrics: "\n\n".join(lines)}


@worded_errors
def export_study(studio: Studio, view: ResultsView, kind: str, lang: str, study_id: int | None) -> dict:
    """`kind` is csv or jsonl (votes with the key) or preferences (DPO pairs). Inputs: language, study.
    Output: the exported file."""
    return {view.exported: str(studio.export_study(chosen_study(study_id, lang), kind))}


def _pct(block: dict) -> str:
    """A rate with its 95% interval, as percentages."""
    rate, (low, high) = block["rate"], block["ci"]
    return "-" if rate is None else f"{100 * rate:.0f}% [{100 * low:.0f}–{100 * high:.0f}%]"


def study_summary(stats: dict, names: dict[str, str], lang: str) -> str:
    """The unblinded verdict, naming the two sides (`names`: baseline and candidate): the candidate's
    win/tie/loss/both-bad rates with 95% intervals, the sign test, criterion means, agreement between raters and
    flagged items."""
    overall = stats["overall"]
    lines = [sides_line(names, lang), t("study_votes_sides", lang, n=stats["n_votes"], candidate=names["candidate"])]
    lines += [f"- {outcome_label(o, names, lang)}: {_pct(overall[o])}" for o in OUTCOMES]
    p_value = overall["sign_test_p"]
    lines.append(t("study_sign_test", lang, p="-" if p_value is None else f"{p_value:.4f}",
                   wins=overall["win"]["count"], losses=overall["loss"]["count"]))
    for name, means in stats["criteria"].items():
        if means["adapter_mean"] is not None and means["base_mean"] is not None:
            lines.append(t("study_criterion_sides", lang, name=name, adapter=means["adapter_mean"],
                           base=means["base_mean"], **names))
    lines += agreement_lines(stats["agreement"], lang)
    if stats["flagged_items"]:
        lines.append(t("study_flagged", lang, count=stats["flagged_items"]))
    return "\n\n".join(lines)


def agreement_lines(agreement: dict, lang: str) -> list[str]:
    """How far the raters agree: Fleiss' kappa over all raters and Cohen's kappa per pair, where there are items
    enough to compute them (none yet: no line)."""
    lines = []
    if agreement["fleiss"] is not None:
        lines.append(t("study_fleiss", lang, kappa=agreement["fleiss"], items=agreement["fleiss_items"]))
    for pair in agreement["cohen"]:
        lines.append(t("study_cohen", lang, a=pair["raters"][0], b=pair["raters"][1], kappa=pair["kappa"],
                       items=pair["items"]))
    return lines


def outcome_chart(stats: dict, names: dict[str, str], lang: str) -> go.Figure:
    """The candidate's outcome rates as bars with their 95% intervals, each bar naming the side it favours."""
    overall = stats["overall"]
    rates = [overall[o]["rate"] or 0 for o in OUTCOMES]
    errors_up = [(overall[o]["ci"][1] - (overall[o]["rate"] or 0)) for o in OUTCOMES]
    errors_down = [((overall[o]["rate"] or 0) - overall[o]["ci"][0]) for o in OUTCOMES]
    figure = go.Figure(go.Bar(x=[outcome_label(o, names, lang) for o in OUTCOMES], y=rates,
                              error_y=dict(type="data", array=errors_up, arrayminus=errors_down)))
    figure.update_layout(yaxis=dict(range=[0, 1], tickformat=".0%"), height=320, margin=dict(l=40, r=10, t=20, b=40))
    return figure


def group_table(stats: dict, names: dict[str, str], lang: str) -> pd.DataFrame:
    """The outcome rates per domain and per rater, the columns naming the sides."""
    rows = []
    for kind, groups in (("domain", stats["by_domain"]), ("rater", stats["by_rater"])):
        for group, block in groups.items():
            rows.append([t(f"group_kind_{kind}", lang), group or "-", block["n"]] + [_pct(block[o]) for o in OUTCOMES])
    columns = [t("col_group_kind", lang), t("col_group", lang), "n"] + [outcome_label(o, names, lang) for o in OUTCOMES]
    return pd.DataFrame(rows, columns=columns)
