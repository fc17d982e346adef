"""The Training tab's handlers called directly with a fake studio: dicts keyed by the view, worded errors."""
from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

from engine.errors import EngineError
from engine.locales import render_error
from engine.studio import Studio
from engine.training.events import RunState
from engine.training.runner import RunSummary
from ui import training_tab
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
        return self.live

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
    assert shown["run_id"] == "r3" and shown["cursor"] == 0 and shown["timer"].active is True


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
    assert shown["run_id"] == "r2" and shown["timer"].active is False


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
    from engine.training.events import RunSnapshot
    from ui import present

    clean = present.status_text(RunSnapshot("r1", RunState.DONE, step=3, max_steps=3), lang)
    damaged = present.status_text(RunSnapshot("r1", RunState.DONE, step=3, max_steps=3, skipped_lines=2), lang)
    assert "r1/events.jsonl" not in clean
    assert damaged.startswith(clean) and "r1/events.jsonl" in damaged and "2" in damaged[len(clean):]
