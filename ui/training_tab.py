"""Training tab: what *Start* will train (data, model, main settings, estimate), start, stop and resume runs; live
charts, progress and a plain-language diagnosis (a finished run's worded as its result); the history of past runs
with their curves, an overlay of two runs, and deletion.

The tab only reads: every tick asks the engine for the events after its cursor, so a page reload or
a second tab rebuilds the whole curve from cursor 0 and keeps following a live run; a run started elsewhere (by
`python app.py train`, another app or tab) is followed from its start once a tick notices it. Watching costs the
training little: one timer, one request a tick (every POLL_SECONDS while the run trains, WATCH_SECONDS otherwise),
nothing sent back when nothing changed (`gr.skip()`), the charts redrawn at most every CHART_SECONDS while the run
trains and the runs table only when a run changed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import EngineError, RunState, Studio, render_error
from ui import forms, journey, present
from ui.chat_tab import MODEL_LANE
from ui.export_tab import report_for_run
from ui.i18n import t
from ui.page import Page
from ui.wiring import bind, worded_errors

POLL_SECONDS = 1.0  # while the followed run trains, a new point reaches the page within about a second
WATCH_SECONDS = 3.0  # while none trains, a run started elsewhere shows within about three seconds
CHART_SECONDS = 5.0  # while a run trains, its charts are redrawn at most this often (each redraw costs the browser)
clock = time.monotonic  # when the charts were drawn (a test sets the time)
ENDED = (RunState.DONE, RunState.STOPPED)  # a run in these states is diagnosed as a result


@dataclass
class TrainingView:
    """The Training tab's components that handlers fill: the followed run (its id, cursor, points and pace in
    session state), and the history of runs (with what its table shows, in session state); and the form's field
    names (plain names in tests)."""

    run_id: Any
    cursor: Any
    points: Any
    pace: Any  # session state: (when the charts were drawn, with how many points, the timer's interval), or None
    status: Any
    progress: Any
    diagnosis: Any
    plot: Any
    metrics: Any
    timer: Any
    runs: Any
    shown_runs: Any  # session state: what the runs table shows now (its language and the runs), or None
    pick: Any
    compare: Any
    form: list[str]  # the form's field names, in the order of the values handlers receive
    summary: Any  # what *Start* would train: data, model, main settings, estimate

    @property
    def followed(self) -> list:
        """The outputs of every handler that follows a run, in the API's order."""
        return [self.run_id, self.cursor, self.points, self.pace, self.status, self.progress, self.diagnosis,
                self.plot, self.metrics, self.timer]

    @property
    def history(self) -> list:
        """The outputs of the history handlers: the runs table and the two run pickers."""
        return [self.runs, self.pick, self.compare]


def follow(studio: Studio, view: TrainingView, lang: str, current: str | None, seen: int, known: list,
           other: str | None = None, pace: tuple | None = None) -> dict:
    """Inputs: language, the followed run `current` (None: no run), the cursor `seen`, the points `known` and the
    `pace` so far, optionally a run `other` to overlay. Outputs: `view.followed` for that run: the charts drawn from
    cursor 0, then again when there are new points (at most every CHART_SECONDS while it trains); the timer ticking
    every POLL_SECONDS while it trains, else every WATCH_SECONDS; every output skipped when nothing changed."""
    if current is None:
        return {view.run_id: None, view.cursor: seen, view.points: known, view.pace: None,
                view.status: present.status_text(studio.snapshot(None), lang), view.progress: "",
                view.diagnosis: "", view.plot: gr.skip(), view.metrics: gr.skip(), view.timer: _timer(WATCH_SECONDS)}
    events, next_cursor = studio.events_since(current, seen)
    known = known + present.metric_points(events)
    snapshot = studio.snapshot(current)
    live = snapshot.state.is_live or studio.is_live(current)
    drawn_at, drawn, interval = pace or (0.0, -1, None)
    now, wanted = clock(), POLL_SECONDS if live else WATCH_SECONDS
    redraw = drawn != len(known) and (seen == 0 or not live or now - drawn_at >= CHART_SECONDS)
    if seen and next_cursor == seen and not redraw and interval == wanted:
        return {component: gr.skip() for component in view.followed}
    overlay = present.metric_points(studio.events_since(other, 0)[0]) if other else None
    return {view.run_id: current, view.cursor: next_cursor, view.points: known,
            view.pace: (now, len(known), wanted) if redraw else (drawn_at, drawn, wanted),
            view.status: present.status_text(snapshot, lang),
            view.progress: present.progress_text(snapshot, known, lang),
            view.diagnosis: present.diagnosis_text(known, lang, snapshot.state in ENDED),
            view.plot: present.loss_figure(known, lang, overlay, other or "") if redraw else gr.skip(),
            view.metrics: present.metrics_figure(known, lang) if redraw else gr.skip(),
            view.timer: _timer(wanted) if interval != wanted else gr.skip()}


def _timer(seconds: float) -> gr.Timer:
    """The timer's update: ticking every `seconds`."""
    return gr.Timer(seconds, active=True)


def show_summary(studio: Studio, view: TrainingView, lang: str, dataset_path: str, *values) -> dict:
    """Inputs: language, dataset path, the form's values (one per field of `view.form`). Output: the run *Start*
    would begin (data, model, main settings, estimate), or why it cannot start, in words."""
    try:
        plan = studio.plan(forms.config_of(studio, view.form, values, dataset_path or ""))
    except EngineError as error:
        return {view.summary: f"{t('summary_title', lang)}\n\n❌ {render_error(error, lang)}"}
    return {view.summary: present.run_summary(plan, lang)}


@worded_errors
def start_training(studio: Studio, view: TrainingView, lang: str, dataset_path: str, *values) -> dict:
    """Inputs: language, dataset path, the form's values (one per field of `view.form`). Outputs: `view.followed`,
    for the new run."""
    new_run = studio.start(forms.config_of(studio, view.form, values, dataset_path or ""))
    gr.Info(t("started", lang, run_id=new_run))
    return follow(studio, view, lang, new_run, 0, [])


def poll(studio: Studio, view: TrainingView, lang: str, current: str | None, seen: int, known: list,
         pace: tuple | None, shown: list | None) -> dict:
    """Inputs: language (the followed run, its cursor, points and pace, and what the runs table shows, live in
    session state). Outputs: `view.followed`, and the runs table with what it shows: a run that started since the
    table was drawn (by `python app.py train`, another app or tab) is followed from its start; otherwise the
    followed run goes on; what did not change is left as it is."""
    started = studio.current_run_id() if studio.is_live() and not studio.is_live(current or "") else None
    listed = {run.run_id: run.state.is_live for run in shown[1]} if shown else {}
    if started is not None and not listed.get(started, False):
        followed = follow(studio, view, lang, started, 0, [])
    elif current is None:
        followed = {component: gr.skip() for component in view.followed}
    else:
        followed = follow(studio, view, lang, current, seen, known, pace=pace)
    return followed | refresh_table(studio, view, lang, shown)


def stop_training(studio: Studio, view: TrainingView, lang: str) -> None:
    """Input: language. Outputs: none (asks the live run to stop after its current step, and says so)."""
    gr.Info(t("stop_requested" if studio.stop() else "nothing_to_stop", lang))


def attach(studio: Studio, view: TrainingView, lang: str) -> dict:
    """Input: language. On page load, follow the current (or latest) run from cursor 0. Outputs: `view.followed`."""
    history = studio.list_runs()
    return follow(studio, view, lang, studio.current_run_id() or (history[0].run_id if history else None), 0, [])


def list_runs(studio: Studio, view: TrainingView, lang: str) -> dict:
    """Input: language. Outputs: `view.history` (the runs table, the run picker, the overlay picker)."""
    history = studio.list_runs()
    ids = [run.run_id for run in history]
    return {view.runs: present.runs_table(history, lang),
            view.pick: gr.Dropdown(choices=ids, value=ids[0] if ids else None),
            view.compare: gr.Dropdown(choices=[""] + ids, value="")}


def refresh_table(studio: Studio, view: TrainingView, lang: str, shown: list | None) -> dict:
    """Inputs: language, what the runs table shows (session state). Outputs: the runs table and what it shows,
    both left as they are when no run changed and the language is the same."""
    now = [lang, studio.list_runs()]
    if now == shown:
        return {view.runs: gr.skip(), view.shown_runs: gr.skip()}
    return {view.runs: present.runs_table(now[1], lang), view.shown_runs: now}


def show_run(studio: Studio, view: TrainingView, lang: str, chosen: str | None, other: str | None) -> dict:
    """Inputs: language, a run, optionally a run to overlay. Outputs: `view.followed`."""
    return follow(studio, view, lang, chosen or None, 0, [], other or None)


@worded_errors
def resume_run(studio: Studio, view: TrainingView, lang: str, chosen: str | None) -> dict:
    """Inputs: language, a stopped/failed/interrupted run. Outputs: `view.followed`, following it again."""
    resumed = studio.resume(chosen or "")
    gr.Info(t("resumed", lang, run_id=resumed))
    return follow(studio, view, lang, resumed, 0, [])


@worded_errors
def delete_run(studio: Studio, view: TrainingView, lang: str, chosen: str | None) -> dict:
    """Inputs: language, a run. Outputs: `view.history`, refreshed."""
    studio.delete_run(chosen or "")
    gr.Info(t("runs_deleted", lang, run_id=chosen))
    return list_runs(studio, view, lang)


@dataclass
class TrainingLayout(TrainingView):
    """The whole tab: the components handlers fill and the buttons."""

    start: Any
    stop: Any
    show: Any
    resume: Any
    delete: Any
    report: Any
    report_file: Any


def build(page: Page) -> None:
    """Lay out the Training tab and wire its events (the form's values start a run)."""
    view, studio, lang = _layout(page), page.studio, page.language
    state = [view.run_id, view.cursor, view.points, view.pace]
    history = bind(list_runs, studio, view)
    view.start.click(bind(start_training, studio, view, fields=view.form),
                     [lang, page.form.dataset_path] + page.form.components, view.followed,
                     api_name="start_training").then(history, [lang], view.history, api_visibility="private")
    view.timer.tick(bind(poll, studio, view), [lang] + state + [view.shown_runs],
                    view.followed + [view.runs, view.shown_runs], api_name="poll", show_progress="hidden", queue=False)
    view.stop.click(bind(stop_training, studio, view), [lang], None, api_name="stop_training")
    view.show.click(bind(show_run, studio, view), [lang, view.pick, view.compare], view.followed, api_name="show_run")
    page.language_switch.add(bind(show_run, studio, view), [lang, view.run_id, view.compare], view.followed)
    view.resume.click(bind(resume_run, studio, view), [lang, view.pick], view.followed, api_name="resume_run").then(
        history, [lang], view.history, api_visibility="private")
    view.delete.click(bind(delete_run, studio, view), [lang, view.pick], view.history, api_name="delete_run")
    view.report.click(bind(report_for_run, studio), [lang, view.pick], [view.report_file], api_name="run_report",
                      concurrency_id=MODEL_LANE)
    form = [page.form.dataset_path] + page.form.components
    summarising = bind(show_summary, studio, view, fields=view.form)
    gr.on([value.change for value in form], summarising, [lang] + form, [view.summary],  # not on load: the check runs
          api_name="run_summary", show_progress="hidden", trigger_mode="always_last")
    for switch in (page.language_switch, page.tab_switch):
        switch.add(summarising, [lang] + form, [view.summary])
    view.runs.change(lambda: journey.has_trained_run(studio), None, [page.marks["trained"]],
                     api_visibility="private", show_progress="hidden")
    page.demo.load(bind(attach, studio, view), [lang], view.followed, api_name="attach")
    page.demo.load(history, [lang], view.history, api_name="list_training_runs")


def _layout(page: Page) -> TrainingLayout:
    """The tab's components, laid out; the followed run's id, cursor and points, and what the runs table shows, are
    session state."""
    texts = page.texts
    summary = gr.Markdown(elem_id="run-summary")
    with gr.Row():
        journey.next_button(page, "tab-params", "change_settings", "change-settings", variant="secondary")
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
            report = texts.add(gr.Button(elem_id="runs-report"), value="report_button")
        report_file = texts.add(gr.File(interactive=False, elem_id="runs-report-file"), label="report_file")
    journey.next_button(page, "tab-chat", "next_to_chat", "next-chat")
    return TrainingLayout(run_id=gr.State(None), cursor=gr.State(0), points=gr.State([]), status=status,
                          progress=progress, diagnosis=diagnosis, plot=plot, metrics=metrics,
                          pace=gr.State(None), timer=gr.Timer(WATCH_SECONDS), runs=runs, shown_runs=gr.State(None),
                          pick=pick, compare=compare,
                          form=page.form.names, start=start, stop=stop, show=show, resume=resume, delete=delete,
                          report=report, report_file=report_file, summary=summary)
