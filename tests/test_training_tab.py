"""The Training tab's handlers called directly with a fake studio: dicts keyed by the view, worded errors."""
from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

from engine.errors import EngineError
from engine.locales import render_error
from engine.studio import Studio
from engine.training.events import ErrorEvent, EventLog, LogEvent, RunSnapshot, RunState, StatusEvent, snapshot
from engine.training.runner import RunSummary
from ui import present, training_tab
from ui.training_tab import TrainingView

VIEW = TrainingView(**{f.name: f.name for f in dataclasses.fields(TrainingView)})


class FakeStudio:
    """Records what the tab asks for; every run it knows is `r2` (newest) and `r1`, with no events yet."""

    def __init__(self, tmp_path, live: bool = False, current: str | None = None) -> None:
        self.idle = Studio(tmp_path / "runs")  # a real snapshot of "no run yet"
        self.live, self.current = live, current
        self.forms: list[dict] = []
        self.started: list = []
        self.deleted: list[str] = []

    def config_from_form(self, values: dict):
        self.forms.append(values)
        if values.get("learning_rate") == 0.5:
            raise EngineError("config_range", {"field": "learning_rate", "value": 0.5, "min": 0, "max": 0.1})
        return self.idle.default_config().replace(**values)

    def start(self, config):
        self.started.append(config)
        return "r3"

    def snapshot(self, run_id=None):
        return self.idle.snapshot(None)

    def events_since(self, run_id, cursor):
        return [], cursor

    def is_live(self, run_id=None):
        return self.live and (run_id is None or self.current in (None, run_id))

    def current_run_id(self):
        return self.current

    def list_runs(self):
        return [RunSummary(run_id, f"runs/{run_id}", RunState.DONE, 0.0, True, 0.5) for run_id in ("r2", "r1")]

    def delete_run(self, run_id):
        self.deleted.append(run_id)


def test_start_training_names_the_form_values_and_follows_the_new_run(tmp_path):
    studio = FakeStudio(tmp_path, live=True)
    view = dataclasses.replace(VIEW, form=["max_steps", "lora_r"])
    shown = training_tab.start_training(studio, view, "en", "  data/x.jsonl ", 2, 8)
    assert studio.forms == [{"max_steps": 2, "lora_r": 8}]
    assert studio.started[0].dataset_path == "data/x.jsonl" and studio.started[0].max_steps == 2
    assert set(shown) == set(VIEW.followed)
    assert shown["run_id"] == "r3" and shown["cursor"] == 0 and shown["timer"].value == training_tab.POLL_SECONDS


def test_start_training_words_a_bad_setting(tmp_path):
    with pytest.raises(gr.Error) as refused:
        training_tab.start_training(FakeStudio(tmp_path), dataclasses.replace(VIEW, form=["learning_rate"]), "zh",
                                    "x.jsonl", 0.5)
    error = EngineError("config_range", {"field": "learning_rate", "value": 0.5, "min": 0, "max": 0.1})
    assert refused.value.message == render_error(error, "zh")


def test_a_blank_path_box_starts_a_run_without_a_dataset_not_the_sample(tmp_path):
    studio = FakeStudio(tmp_path)
    training_tab.start_training(studio, dataclasses.replace(VIEW, form=["max_steps"]), "en", "  ", 2)
    training_tab.start_training(studio, dataclasses.replace(VIEW, form=["max_steps"]), "en", None, 2)
    assert [config.dataset_path for config in studio.started] == ["", ""]  # the engine then says none is chosen


def test_attach_follows_the_current_run_or_else_the_newest(tmp_path):
    assert training_tab.attach(FakeStudio(tmp_path, current="r1"), VIEW, "en")["run_id"] == "r1"
    shown = training_tab.attach(FakeStudio(tmp_path), VIEW, "en")
    assert shown["run_id"] == "r2" and shown["timer"].value == training_tab.WATCH_SECONDS  # the slower watch


def test_nothing_to_follow_keeps_the_plots(tmp_path):
    shown = training_tab.show_run(FakeStudio(tmp_path), VIEW, "en", "", "")
    assert shown["run_id"] is None and shown["progress"] == "" and shown["plot"] == gr.skip()


def test_delete_run_refreshes_the_history(tmp_path):
    studio = FakeStudio(tmp_path)
    shown = training_tab.delete_run(studio, VIEW, "en", "r1")
    assert studio.deleted == ["r1"] and set(shown) == set(VIEW.history)
    assert list(shown["runs"].iloc[:, 0]) == ["r2", "r1"] and shown["pick"].value == "r2"
    assert shown["compare"].value == "" and [value for _label, value in shown["compare"].choices] == ["", "r2", "r1"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_status_says_when_lines_of_the_event_log_were_skipped(lang):

    clean = present.status_text(RunSnapshot("r1", RunState.DONE, step=3, max_steps=3), lang)
    damaged = present.status_text(RunSnapshot("r1", RunState.DONE, step=3, max_steps=3, skipped_lines=2), lang)
    assert "r1/events.jsonl" not in clean
    assert damaged.startswith(clean) and "r1/events.jsonl" in damaged and "2" in damaged[len(clean):]


class LiveStudio(FakeStudio):
    """A studio whose run `r1` has a real event log the test appends to, and whose runs list the test sets."""

    def __init__(self, tmp_path) -> None:
        super().__init__(tmp_path, live=True, current="r1")
        self.log = EventLog()
        self.log.append(StatusEvent(RunState.TRAINING, max_steps=10))
        self.runs = super().list_runs()

    def train(self, *steps: int) -> None:
        for step in steps:
            self.log.append(LogEvent(step, max_steps=10, loss=2.0 / step, learning_rate=1e-4))

    def events_since(self, run_id, cursor):
        return self.log.since(cursor) if run_id == "r1" else ([], cursor)

    def snapshot(self, run_id=None):
        return snapshot(run_id, self.log.since(0)[0])

    def list_runs(self):
        return self.runs


def tick(studio, shown: dict) -> dict:
    """One timer tick of the followed run, from what the previous tick (or attach) left in session state; returns
    what the page then holds (an output the tick skipped keeps its value) and, under "sent", what the tick sent."""
    sent = training_tab.poll(studio, VIEW, "en", shown["run_id"], shown["cursor"], shown["points"], shown["pace"],
                             shown.get("shown_runs"))
    return {**shown, **{name: value for name, value in sent.items() if not skipped(value)}, "sent": sent}


def skipped(value) -> bool:
    """Whether a handler left this output as it is (`gr.skip()`)."""
    return isinstance(value, dict) and value == gr.skip()


def test_a_tick_without_new_points_redraws_no_chart_and_sends_nothing(tmp_path):
    studio = LiveStudio(tmp_path)
    studio.train(1, 2, 3)
    first = training_tab.attach(studio, VIEW, "en")
    assert list(first["plot"].data[0].x) == [1, 2, 3] and first["metrics"] != gr.skip()
    assert first["timer"].value == training_tab.POLL_SECONDS
    listed = tick(studio, first)  # the first tick draws the runs table
    assert not skipped(listed["sent"]["runs"]) and all(skipped(listed["sent"][name]) for name in VIEW.followed)
    quiet = tick(studio, listed)
    assert all(skipped(value) for value in quiet["sent"].values())  # the page keeps its words and charts
    assert quiet["cursor"] == first["cursor"] == 4 and quiet["points"] == first["points"]
    assert "3/10" in quiet["progress"]
    studio.log.append(StatusEvent(RunState.SAVING))  # an event, but no new point: the charts stay
    saving = tick(studio, quiet)["sent"]
    assert saving["plot"] == gr.skip() and saving["metrics"] == gr.skip() and "Saving" in saving["status"]
    assert saving["timer"] == gr.skip()  # still ticking as often


def test_new_points_redraw_the_charts_at_most_every_few_seconds_while_training(tmp_path, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(training_tab, "clock", lambda: now[0])
    studio = LiveStudio(tmp_path)
    studio.train(1, 2)
    first = training_tab.attach(studio, VIEW, "en")
    studio.train(3)
    soon = tick(studio, first)
    assert soon["sent"]["plot"] == gr.skip() and soon["sent"]["metrics"] == gr.skip()
    assert "3/10" in soon["sent"]["progress"] and [point["step"] for point in soon["points"]] == [1, 2, 3]
    studio.train(4)
    now[0] += training_tab.CHART_SECONDS
    grown = tick(studio, soon)
    assert list(grown["plot"].data[0].x) == [1, 2, 3, 4] and grown["sent"]["metrics"] != gr.skip()
    assert grown["cursor"] == 5 and [point["step"] for point in grown["points"]] == [1, 2, 3, 4]
    studio.train(5)
    studio.log.append(StatusEvent(RunState.DONE))
    studio.live = False
    ended = tick(studio, grown)  # the run's end draws its last points at once and slows the timer
    assert list(ended["plot"].data[0].x) == [1, 2, 3, 4, 5]
    assert ended["sent"]["timer"].value == training_tab.WATCH_SECONDS


def test_following_a_run_from_the_start_draws_even_an_empty_chart(tmp_path):
    shown = training_tab.attach(LiveStudio(tmp_path), VIEW, "en")  # no events yet: the old run's curve goes
    assert shown["plot"] != gr.skip() and list(shown["plot"].data[0].x) == [] and shown["metrics"] != gr.skip()


def test_the_runs_table_is_redrawn_only_when_a_run_changed_or_the_language(tmp_path):
    studio = LiveStudio(tmp_path)
    first = training_tab.refresh_table(studio, VIEW, "en", None)
    assert list(first["runs"].iloc[:, 0]) == ["r2", "r1"] and first["shown_runs"] == ["en", studio.runs]
    quiet = training_tab.refresh_table(studio, VIEW, "en", first["shown_runs"])
    assert quiet == {"runs": gr.skip(), "shown_runs": gr.skip()}
    studio.runs = [dataclasses.replace(studio.runs[0], step=7, state=RunState.TRAINING), studio.runs[1]]
    changed = training_tab.refresh_table(studio, VIEW, "en", first["shown_runs"])
    assert changed["runs"].iloc[0, 2] == 7 and changed["shown_runs"] == ["en", studio.runs]
    chinese = training_tab.refresh_table(studio, VIEW, "zh", changed["shown_runs"])
    assert chinese["shown_runs"] == ["zh", studio.runs]
    assert list(chinese["runs"].columns) != list(changed["runs"].columns)  # redrawn, with the headers in Chinese


@pytest.mark.parametrize(("lang", "fold"), [("en", "The last lines of train.log"), ("zh", "train.log 的最后几行")])
def test_a_dead_workers_last_log_lines_are_folded_below_the_sentence(lang, fold):
    error = ErrorEvent("worker_stopped_unexpectedly", {"exit": 3, "log_tail": "Traceback ...\nValueError: boom"})
    text = present.status_text(RunSnapshot("r1", RunState.FAILED, step=2, max_steps=9, error=error), lang)
    sentence, folded = text.split("<details>")
    assert render_error(error.to_error(), lang) in sentence
    assert "Traceback" not in sentence and "ValueError: boom" in folded and fold in folded


def test_a_run_started_elsewhere_is_followed_from_its_start_and_nothing_is_sent_while_idle(tmp_path):
    idle = FakeStudio(tmp_path)
    listed = training_tab.poll(idle, VIEW, "en", None, 0, [], None, None)
    assert all(skipped(listed[name]) for name in VIEW.followed) and not skipped(listed["runs"])
    again = training_tab.poll(idle, VIEW, "en", None, 0, [], None, listed["shown_runs"])
    assert all(skipped(value) for value in again.values())
    elsewhere = FakeStudio(tmp_path, live=True, current="r3")  # a run the table has not listed yet
    started = training_tab.poll(elsewhere, VIEW, "en", "r1", 5, [], None, listed["shown_runs"])
    assert started["run_id"] == "r3" and started["cursor"] == 0 and started["plot"] != gr.skip()
    assert started["timer"].value == training_tab.POLL_SECONDS
    chosen = FakeStudio(tmp_path, live=True, current="r2")  # the user looks at r1 while the listed r2 trains
    listed_live = ["en", [dataclasses.replace(run, state=RunState.TRAINING) if run.run_id == "r2" else run
                          for run in chosen.list_runs()]]
    kept = training_tab.poll(chosen, VIEW, "en", "r1", 0, [], (0.0, 0, training_tab.WATCH_SECONDS), listed_live)
    assert kept["run_id"] == "r1"
