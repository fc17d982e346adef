"""Blind study tab: an organiser sets up and pre-generates a study; raters judge answers A and B
without knowing which model wrote which; the organiser unblinds the results and exports them.

Raters see only the question, the two answers and their progress: no model names, no timing, no
streaming order. Every vote is committed to SQLite at once.
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from engine.chat import metrics
from engine.errors import EngineError
from engine.studio import Studio
from engine.study.stats import OUTCOMES, summarize
from ui import gen_settings, present
from ui.i18n import Texts, t

MAX_CRITERIA = 5
CHOICES = ("A", "B", "tie", "both_bad")


def _studies(studio: Studio) -> list[tuple[str, int]]:
    return [(f"{s['id']}: {s['name']}", s["id"]) for s in studio.studies.studies()]


def build(demo: gr.Blocks, studio: Studio, texts: Texts, lang_input: gr.Radio) -> None:
    texts.add(gr.Markdown(), value="study_intro")
    with texts.add(gr.Accordion(open=True, elem_id="study-organise"), label="study_organise"):
        with gr.Row():
            name = texts.add(gr.Textbox(elem_id="study-name"), label="study_name")
            questions_path = texts.add(gr.Textbox(elem_id="study-questions"), label="study_questions",
                                       info="study_questions_info")
            upload = texts.add(gr.File(file_types=[".csv", ".jsonl", ".json", ".tsv", ".xlsx"]), label="dataset_upload")
        with gr.Row():
            run = texts.add(gr.Dropdown(choices=[], allow_custom_value=True, elem_id="study-run", scale=3),
                            label="run", info="run_info")
            take_held_out = texts.add(gr.Button(elem_id="study-held-out", scale=1), value="study_held_out")
        with gr.Row():
            criteria = texts.add(gr.Textbox(value="terminology, logic, format", elem_id="study-criteria"),
                                 label="study_criteria")
            password = texts.add(gr.Textbox(type="password", elem_id="study-password"), label="study_password",
                                 info="study_password_info")
            repeats = texts.add(gr.Slider(0, 10, value=0, step=1, elem_id="study-repeats"), label="study_repeats",
                                info="study_repeats_info")
        settings = gen_settings.build(texts, "study-gen-settings")
        with gr.Row():
            create = texts.add(gr.Button(variant="primary", elem_id="study-create"), value="study_create")
            generate = texts.add(gr.Button(elem_id="study-generate"), value="study_generate")
        organiser_info = gr.Markdown(elem_id="study-info")
    study = texts.add(gr.Dropdown(choices=[], allow_custom_value=True, elem_id="study-pick"), label="study_pick")
    with texts.add(gr.Accordion(open=True, elem_id="study-rate"), label="study_rate"):
        with gr.Row():
            rater = texts.add(gr.Textbox(elem_id="rater-name"), label="rater_name")
            rater_password = texts.add(gr.Textbox(type="password", elem_id="rater-password"), label="study_password")
            begin = texts.add(gr.Button(variant="primary", elem_id="rater-begin"), value="rater_begin")
        item_progress = gr.Markdown(elem_id="rate-progress")
        question = gr.Markdown(elem_id="rate-question")
        with gr.Row():
            answer_a = texts.add(gr.Textbox(lines=8, interactive=False, elem_id="answer-a"), label="answer_a")
            answer_b = texts.add(gr.Textbox(lines=8, interactive=False, elem_id="answer-b"), label="answer_b")
        choice_keys = [(f"choice_{c}", c) for c in CHOICES]
        choice = texts.add_choices(texts.add(gr.Radio(choices=texts.worded_choices(choice_keys), elem_id="rate-choice"),
                                             label="rate_choice"), choice_keys)
        with gr.Row():
            scores_a = [gr.Slider(1, 5, value=3, step=1, visible=False, elem_id=f"score-a-{i}") for i in range(MAX_CRITERIA)]
        with gr.Row():
            scores_b = [gr.Slider(1, 5, value=3, step=1, visible=False, elem_id=f"score-b-{i}") for i in range(MAX_CRITERIA)]
        comment = texts.add(gr.Textbox(elem_id="rate-comment"), label="rate_comment")
        with gr.Row():
            submit = texts.add(gr.Button(variant="primary", elem_id="rate-submit"), value="rate_submit")
            skip = texts.add(gr.Button(elem_id="rate-skip"), value="rate_skip")
    with texts.add(gr.Accordion(open=False, elem_id="study-results"), label="study_results"):
        unblind = texts.add(gr.Button(elem_id="study-unblind"), value="study_unblind")
        summary = gr.Markdown(elem_id="study-summary")
        automatic = texts.add(gr.Button(elem_id="study-metrics"), value="study_metrics")
        metrics_md = gr.Markdown(elem_id="study-metrics-text")
        chart = gr.Plot(elem_id="study-chart")
        by_group = gr.Dataframe(interactive=False, elem_id="study-groups")
        with gr.Row():
            export_csv = texts.add(gr.Button(elem_id="export-csv"), value="export_votes_csv")
            export_jsonl = texts.add(gr.Button(elem_id="export-jsonl"), value="export_votes_jsonl")
            export_pairs = texts.add(gr.Button(elem_id="export-pairs"), value="export_preferences")
        exported = texts.add(gr.File(interactive=False, elem_id="study-exported"), label="editor_exported")
    rater_id = gr.State(None)
    current = gr.State(None)  # (question id, repeat) of the item on screen

    def refresh(lang: str):
        """Input: language. Outputs: the adapter picker (final adapters and checkpoints) and the study picker."""
        runs = present.adapter_choices(studio.adapter_choices(), lang)
        studies = _studies(studio)
        return (gr.Dropdown(choices=runs, value=runs[0][1] if runs else None),
                gr.Dropdown(choices=studies, value=studies[0][1] if studies else None))

    def held_out_questions(lang: str, run_id: str | None):
        """Inputs: language, adapter choice. Outputs: the question file path, now a file of the run's
        held-out rows (prompt + reference), and a line for the organiser."""
        try:
            if not run_id:
                raise EngineError("run_not_found", {"path": "-"}, hint="hint_pick_run")
            path = studio.held_out_questions_file(run_id)
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        count = len(studio.studies_questions(path))
        return str(path), t("study_held_out_done", lang, count=count, path=path)

    defaults = gen_settings.DEFAULTS

    def create_study(lang: str, study_name: str, path: str, run_id: str | None, criteria_text: str,
                     secret: str, repeat_count: float, new_tokens=defaults.max_new_tokens, temp=defaults.temperature,
                     nucleus=defaults.top_p, penalty=defaults.repetition_penalty, gen_seed=defaults.seed, system=""):
        """Inputs: language, name, question file, adapter choice, criteria, password, repeats, generation
        settings. Outputs: the study picker with the new study chosen, and a line for the organiser."""
        try:
            if not run_id:
                raise EngineError("run_not_found", {"path": "-"}, hint="hint_pick_run")
            adapter_path = studio.adapter_path(run_id)
            questions = studio.studies_questions(path.strip())
            names = [c.strip() for c in criteria_text.split(",") if c.strip()][:MAX_CRITERIA]
            params = gen_settings.params(new_tokens, temp, nucleus, penalty, gen_seed, system)
            study_id = studio.studies.create_study(study_name, questions, adapter_path, gen_params=asdict(params),
                                                   criteria=names or None, password=secret or None,
                                                   repeats=int(repeat_count or 0))
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        return (gr.Dropdown(choices=_studies(studio), value=study_id),
                t("study_created", lang, id=study_id, count=len(questions)))

    def generate_answers(lang: str, study_id: int | None, progress=gr.Progress()):
        """Inputs: language, study. Output: a line saying how many pairs exist and how many were flagged.
        Resumable: only questions without answers are generated."""
        if study_id is None:
            raise gr.Error(t("study_none", lang))
        try:
            made = studio.studies.generate(int(study_id), studio.chat,
                                           progress=lambda done, total: progress((done, total)))
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        flagged = len(studio.studies.flagged(int(study_id)))
        return t("study_generated", lang, count=made, flagged=flagged)

    def show_item(lang: str, study_id: int, who: int):
        item = studio.studies.next_item(int(study_id), who)
        hidden = [gr.Slider(visible=False)] * (2 * MAX_CRITERIA)
        if item is None:
            pending = studio.studies.pending_generation(int(study_id))
            line = t("rate_not_ready" if pending else "rate_done", lang)
            return (who, None, line, "", "", "", gr.Radio(value=None), *hidden, "")
        sliders = [gr.Slider(visible=i < len(item.criteria), label=f"A · {item.criteria[i]}" if i < len(item.criteria)
                             else "", value=3) for i in range(MAX_CRITERIA)]
        sliders += [gr.Slider(visible=i < len(item.criteria), label=f"B · {item.criteria[i]}" if i < len(item.criteria)
                              else "", value=3) for i in range(MAX_CRITERIA)]
        return (who, (item.question_id, item.repeat), t("rate_progress", lang, done=item.done, total=item.total),
                f"### {item.prompt}", item.answer_a, item.answer_b, gr.Radio(value=None), *sliders, "")

    def begin_rating(lang: str, study_id: int | None, who: str, secret: str):
        """Inputs: language, study, rater name, password. Outputs: the first item to judge."""
        if study_id is None:
            raise gr.Error(t("study_none", lang))
        if not studio.studies.check_password(int(study_id), secret or None):
            raise gr.Error(t("study_wrong_password", lang))
        try:
            rater = studio.studies.add_rater(int(study_id), who)
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        return show_item(lang, study_id, rater)

    def submit_vote(lang: str, study_id: int | None, who: int | None, item, chosen: str | None, note: str, *scores):
        """Inputs: language, study, rater, item, choice, comment, scores. Outputs: the next item."""
        if who is None or item is None:
            raise gr.Error(t("rate_begin_first", lang))
        if not chosen:
            raise gr.Error(t("rate_choose", lang))
        names = list(studio.studies.study(int(study_id))["criteria"])
        given = {"A": dict(zip(names, scores[:len(names)])),
                 "B": dict(zip(names, scores[MAX_CRITERIA:MAX_CRITERIA + len(names)]))} if names else None
        try:
            studio.studies.vote(int(study_id), who, item[0], chosen, scores=given, comment=note or "", repeat=item[1])
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        return show_item(lang, study_id, who)

    def skip_item(lang: str, study_id: int | None, who: int | None, item):
        """Inputs: language, study, rater, item. Outputs: the next item (the skipped one comes back later)."""
        if who is None or item is None:
            raise gr.Error(t("rate_begin_first", lang))
        studio.studies.skip(int(study_id), who, item[0], repeat=item[1])
        return show_item(lang, study_id, who)

    def unblind_results(lang: str, study_id: int | None):
        """Inputs: language, study. Outputs: summary, chart, per-domain and per-rater table."""
        if study_id is None:
            raise gr.Error(t("study_none", lang))
        stats = summarize(studio.studies.results(int(study_id)))
        return study_summary(stats, lang), outcome_chart(stats, lang), group_table(stats, lang)

    def automatic_metrics(lang: str, study_id: int | None) -> str:
        """Inputs: language, study. Output: ROUGE-L/BLEU against the references and eval-split
        perplexity, base vs adapter, shown beside the human verdict."""
        if study_id is None:
            raise gr.Error(t("study_none", lang))
        pairs = studio.studies.answer_pairs(int(study_id))
        scores = metrics.reference_scores([(p["base"], p["adapter"], p["reference"] or "") for p in pairs])
        lines = []
        if scores["adapter"]["n"]:
            for side in ("base", "adapter"):
                lines.append(t("metrics_reference", lang, side=t(f"side_{side}", lang), n=scores[side]["n"],
                               rouge=scores[side]["rouge_l"], bleu=scores[side]["bleu"]))
        else:
            lines.append(t("metrics_no_reference", lang))
        try:
            losses = metrics.eval_perplexity(studio.chat, studio.studies.study(int(study_id))["run_dir"])
            for side in ("base", "adapter"):
                lines.append(t("metrics_perplexity", lang, side=t(f"side_{side}", lang), rows=losses[side]["rows"],
                               loss=losses[side]["loss"], ppl=losses[side]["perplexity"]))
        except EngineError as error:
            lines.append(present.error_message(error, lang))
        return "\n\n".join(lines)

    def export(kind: str):
        def handler(lang: str, study_id: int | None) -> str:
            """Inputs: language, study. Output: the exported file (votes with the key, or DPO pairs)."""
            if study_id is None:
                raise gr.Error(t("study_none", lang))
            folder = Path(tempfile.mkdtemp(prefix="study-"))
            if kind == "preferences":
                path = folder / f"study-{study_id}-preferences.jsonl"
                studio.studies.export_preferences(int(study_id), path)
                return str(path)
            return str(studio.studies.export_votes(int(study_id), folder / f"study-{study_id}-votes.{kind}", kind))
        handler.__name__ = f"export_{kind}"
        return handler

    item_outputs = [rater_id, current, item_progress, question, answer_a, answer_b, choice] + scores_a + scores_b + [comment]
    demo.load(refresh, [lang_input], [run, study], api_visibility="private")
    upload.upload(lambda f: f or "", [upload], [questions_path], api_visibility="private")
    take_held_out.click(held_out_questions, [lang_input, run], [questions_path, organiser_info],
                        api_name="study_held_out")
    create.click(create_study, [lang_input, name, questions_path, run, criteria, password, repeats] + settings,
                 [study, organiser_info], api_name="study_create")
    generate.click(generate_answers, [lang_input, study], [organiser_info], api_name="study_generate",
                   concurrency_id="model")
    begin.click(begin_rating, [lang_input, study, rater, rater_password], item_outputs, api_name="study_begin")
    submit.click(submit_vote, [lang_input, study, rater_id, current, choice, comment] + scores_a + scores_b,
                 item_outputs, api_name="study_vote")
    skip.click(skip_item, [lang_input, study, rater_id, current], item_outputs, api_name="study_skip")
    unblind.click(unblind_results, [lang_input, study], [summary, chart, by_group], api_name="study_results")
    automatic.click(automatic_metrics, [lang_input, study], [metrics_md], api_name="study_metrics",
                    concurrency_id="model")
    export_csv.click(export("csv"), [lang_input, study], [exported], api_name="study_export_csv")
    export_jsonl.click(export("jsonl"), [lang_input, study], [exported], api_name="study_export_jsonl")
    export_pairs.click(export("preferences"), [lang_input, study], [exported], api_name="study_export_preferences")


def _pct(block: dict) -> str:
    rate, (low, high) = block["rate"], block["ci"]
    return "-" if rate is None else f"{100 * rate:.0f}% [{100 * low:.0f}–{100 * high:.0f}%]"


def study_summary(stats: dict, lang: str) -> str:
    """The unblinded verdict: adapter win/tie/loss/both-bad rates with 95% intervals, the sign test,
    criterion means, agreement between raters and flagged items."""
    overall = stats["overall"]
    lines = [t("study_votes", lang, n=stats["n_votes"])]
    lines += [f"- {t('outcome_' + o, lang)}: {_pct(overall[o])}" for o in OUTCOMES]
    p_value = overall["sign_test_p"]
    lines.append(t("study_sign_test", lang, p="-" if p_value is None else f"{p_value:.4f}",
                   wins=overall["win"]["count"], losses=overall["loss"]["count"]))
    for name, means in stats["criteria"].items():
        if means["adapter_mean"] is not None and means["base_mean"] is not None:
            lines.append(t("study_criterion", lang, name=name, adapter=means["adapter_mean"], base=means["base_mean"]))
    fleiss = stats["agreement"]["fleiss"]
    if fleiss is not None:
        lines.append(t("study_fleiss", lang, kappa=fleiss, items=stats["agreement"]["fleiss_items"]))
    for pair in stats["agreement"]["cohen"]:
        lines.append(t("study_cohen", lang, a=pair["raters"][0], b=pair["raters"][1], kappa=pair["kappa"],
                       items=pair["items"]))
    if stats["flagged_items"]:
        lines.append(t("study_flagged", lang, count=stats["flagged_items"]))
    return "\n\n".join(lines)


def outcome_chart(stats: dict, lang: str) -> go.Figure:
    overall = stats["overall"]
    rates = [overall[o]["rate"] or 0 for o in OUTCOMES]
    errors_up = [(overall[o]["ci"][1] - (overall[o]["rate"] or 0)) for o in OUTCOMES]
    errors_down = [((overall[o]["rate"] or 0) - overall[o]["ci"][0]) for o in OUTCOMES]
    figure = go.Figure(go.Bar(x=[t("outcome_" + o, lang) for o in OUTCOMES], y=rates,
                              error_y=dict(type="data", array=errors_up, arrayminus=errors_down)))
    figure.update_layout(yaxis=dict(range=[0, 1], tickformat=".0%"), height=320, margin=dict(l=40, r=10, t=20, b=40))
    return figure


def group_table(stats: dict, lang: str) -> pd.DataFrame:
    rows = []
    for kind, groups in (("domain", stats["by_domain"]), ("rater", stats["by_rater"])):
        for group, block in groups.items():
            rows.append([t(f"group_kind_{kind}", lang), group or "-", block["n"]] + [_pct(block[o]) for o in OUTCOMES])
    columns = [t("col_group_kind", lang), t("col_group", lang), "n"] + [t("outcome_" + o, lang) for o in OUTCOMES]
    return pd.DataFrame(rows, columns=columns)
