"""Training tab: start and stop a run; a timer follows the run's events into a status line and a plot.

The tab only reads: every tick asks the engine for the events after its cursor, so a page reload or
a second tab rebuilds the whole curve from cursor 0 and keeps following a live run.
"""
from __future__ import annotations

import gradio as gr

from engine.errors import EngineError
from engine.studio import Studio
from ui import forms, present
from ui.i18n import Texts, t

POLL_SECONDS = 1.0


def build(demo: gr.Blocks, studio: Studio, texts: Texts, lang_input: gr.Radio, dataset_path: gr.Textbox,
          form_names: list[str], form_components: list) -> None:
    with gr.Row():
        start = texts.add(gr.Button(variant="primary", elem_id="start"), value="start")
        stop = texts.add(gr.Button(variant="stop", elem_id="stop"), value="stop")
    status = gr.Markdown(elem_id="run-status")
    plot = texts.add(gr.Plot(elem_id="loss-plot"), label="loss_plot")
    run_id = gr.State(None)
    cursor = gr.State(0)
    points = gr.State([])
    timer = gr.Timer(POLL_SECONDS, active=False)

    def start_training(lang: str, path: str, *values):
        """Inputs: language, dataset path, form values. Outputs: run id, cursor, points, status, plot, timer."""
        try:
            config = forms.config_from(studio.default_config(), form_names, list(values))
            config = config.replace(dataset_path=path.strip())
            new_run = studio.start(config)
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        gr.Info(t("started", lang, run_id=new_run))
        return (new_run, 0, [], present.status_text(studio.snapshot(new_run), lang),
                present.loss_figure([], lang), gr.Timer(active=True))

    def poll(lang: str, current: str | None, seen: int, known: list):
        """Inputs: language, run id, cursor, points so far. Outputs: cursor, points, status, plot, timer."""
        if current is None:
            return seen, known, present.status_text(studio.snapshot(None), lang), gr.skip(), gr.Timer(active=False)
        events, next_cursor = studio.events_since(current, seen)
        known = known + present.metric_points(events)
        snapshot = studio.snapshot(current)
        live = snapshot.state.is_live or studio.runner.is_live()
        figure = present.loss_figure(known, lang) if events else gr.skip()
        return next_cursor, known, present.status_text(snapshot, lang), figure, gr.Timer(active=live)

    def stop_training(lang: str) -> None:
        """Input: language. Asks the live run to stop after its current step."""
        gr.Info(t("stop_requested" if studio.stop() else "nothing_to_stop", lang))

    def attach(lang: str):
        """On page load: follow the current (or latest) run from cursor 0."""
        runs = studio.list_runs()
        current = studio.runner.current_run_id or (runs[0].run_id if runs else None)
        return (current,) + poll(lang, current, 0, [])

    outputs_after_start = [run_id, cursor, points, status, plot, timer]
    start.click(forms.named_form_handler(start_training, ["lang", "dataset_path"], form_names),
                [lang_input, dataset_path] + form_components, outputs_after_start,
                api_name="start_training")
    timer.tick(poll, [lang_input, run_id, cursor, points], [cursor, points, status, plot, timer],
               api_name="poll", show_progress="hidden")
    stop.click(stop_training, [lang_input], None, api_name="stop_training")
    demo.load(attach, [lang_input], outputs_after_start, api_name="attach")
