"""Training tab: start, stop and resume runs; live charts, progress and a plain-language diagnosis;
the history of past runs with their curves, an overlay of two runs, and deletion.

The tab only reads: every tick asks the engine for the events after its cursor, so a page reload or
a second tab rebuilds the whole curve from cursor 0 and keeps following a live run.
"""
from __future__ import annotations

import gradio as gr

from engine.errors import EngineError
from engine.studio import Studio
from ui import forms, present
from ui.i18n import Texts, t

POLL_SECONDS = 0.5  # an event reaches the page within about half a second


def build(demo: gr.Blocks, studio: Studio, texts: Texts, lang_input: gr.Radio, dataset_path: gr.Textbox,
          form_names: list[str], form_components: list) -> None:
    with gr.Row():
        start = texts.add(gr.Button(variant="primary", elem_id="start"), value="start")
        stop = texts.add(gr.Button(variant="stop", elem_id="stop"), value="stop")
    status = gr.Markdown(elem_id="run-status")
    progress = gr.Markdown(elem_id="run-progress")
    diagnosis = gr.Markdown(elem_id="run-diagnosis")
    plot = texts.add(gr.Plot(elem_id="loss-plot"), label="loss_plot")
    metrics = texts.add(gr.Plot(elem_id="metrics-plot"), label="metrics_plot")
    with texts.add(gr.Accordion(open=False, elem_id="runs"), label="runs_title"):
        runs = gr.Dataframe(interactive=False, elem_id="runs-table")
        with gr.Row():
            pick = texts.add(gr.Dropdown(choices=[], elem_id="runs-pick"), label="runs_pick")
            compare = texts.add(gr.Dropdown(choices=[], elem_id="runs-compare"), label="runs_compare")
        with gr.Row():
            show = texts.add(gr.Button(elem_id="runs-show"), value="runs_show")
            resume = texts.add(gr.Button(elem_id="runs-resume"), value="resume")
            delete = texts.add(gr.Button(variant="stop", elem_id="runs-delete"), value="runs_delete")
    run_id = gr.State(None)
    cursor = gr.State(0)
    points = gr.State([])
    timer = gr.Timer(POLL_SECONDS, active=False)

    def view(lang: str, current: str | None, seen: int, known: list, other: str | None = None):
        """Follow `current` from cursor `seen`. Outputs: run id, cursor, points, status, progress,
        diagnosis, loss plot, metrics plot, timer (active while the run is live)."""
        if current is None:
            return (None, seen, known, present.status_text(studio.snapshot(None), lang), "", "",
                    gr.skip(), gr.skip(), gr.Timer(active=False))
        events, next_cursor = studio.events_since(current, seen)
        known = known + present.metric_points(events)
        snapshot = studio.snapshot(current)
        live = snapshot.state.is_live or (studio.runner.is_live() and studio.runner.current_run_id == current)
        overlay = present.metric_points(studio.events_since(other, 0)[0]) if other else None
        redraw = bool(events) or seen == 0
        return (current, next_cursor, known, present.status_text(snapshot, lang),
                present.progress_text(snapshot, known, lang), present.diagnosis_text(known, lang),
                present.loss_figure(known, lang, overlay, other or "") if redraw else gr.skip(),
                present.metrics_figure(known, lang) if redraw else gr.skip(), gr.Timer(active=live))

    def start_training(lang: str, path: str, *values):
        """Inputs: language, dataset path, form values. Outputs: as `view`, for the new run."""
        try:
            config = forms.config_from(studio.default_config(), form_names, list(values))
            new_run = studio.start(config.replace(dataset_path=path.strip()))
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        gr.Info(t("started", lang, run_id=new_run))
        return view(lang, new_run, 0, [])

    def poll(lang: str, current: str | None, seen: int, known: list):
        """Inputs: language (the run, cursor and points live in session state). Outputs: as `view`."""
        return view(lang, current, seen, known)

    def stop_training(lang: str) -> None:
        """Input: language. Asks the live run to stop after its current step."""
        gr.Info(t("stop_requested" if studio.stop() else "nothing_to_stop", lang))

    def attach(lang: str):
        """On page load: follow the current (or latest) run from cursor 0."""
        history = studio.list_runs()
        current = studio.runner.current_run_id or (history[0].run_id if history else None)
        return view(lang, current, 0, [])

    def list_runs(lang: str):
        """Input: language. Outputs: the runs table and the two run pickers."""
        history = studio.list_runs()
        ids = [run.run_id for run in history]
        return (present.runs_table(history, lang), gr.Dropdown(choices=ids, value=ids[0] if ids else None),
                gr.Dropdown(choices=[""] + ids, value=""))

    def show_run(lang: str, chosen: str | None, other: str | None):
        """Inputs: language, a run, optionally a run to overlay. Outputs: as `view`."""
        return view(lang, chosen or None, 0, [], other or None)

    def resume_run(lang: str, chosen: str | None):
        """Inputs: language, a stopped/failed/interrupted run. Outputs: as `view`, following it again."""
        try:
            resumed = studio.resume(chosen or "")
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        gr.Info(t("resumed", lang, run_id=resumed))
        return view(lang, resumed, 0, [])

    def delete_run(lang: str, chosen: str | None):
        """Inputs: language, a run. Outputs: the refreshed runs table and pickers."""
        try:
            studio.delete_run(chosen or "")
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        gr.Info(t("runs_deleted", lang, run_id=chosen))
        return list_runs(lang)

    followed = [run_id, cursor, points, status, progress, diagnosis, plot, metrics, timer]
    history_outputs = [runs, pick, compare]
    start.click(forms.named_form_handler(start_training, ["lang", "dataset_path"], form_names),
                [lang_input, dataset_path] + form_components, followed, api_name="start_training").then(
        list_runs, [lang_input], history_outputs, api_visibility="private")
    timer.tick(poll, [lang_input, run_id, cursor, points], followed, api_name="poll", show_progress="hidden")
    stop.click(stop_training, [lang_input], None, api_name="stop_training")
    show.click(show_run, [lang_input, pick, compare], followed, api_name="show_run")
    resume.click(resume_run, [lang_input, pick], followed, api_name="resume_run").then(
        list_runs, [lang_input], history_outputs, api_visibility="private")
    delete.click(delete_run, [lang_input, pick], history_outputs, api_name="delete_run")
    timer.tick(lambda lang: present.runs_table(studio.list_runs(), lang), [lang_input], [runs],
               api_visibility="private", show_progress="hidden")
    demo.load(attach, [lang_input], followed, api_name="attach")
    demo.load(list_runs, [lang_input], history_outputs, api_name="list_training_runs")
