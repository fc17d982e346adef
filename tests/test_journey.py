"""The newcomer's path, with fake studios (no server): tab marks, next steps, the first screen's check, the Training
tab's summary of the run it will start, and a finished run's diagnosis worded as its result."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from engine import EngineError, Issue, RunPlan, RunState, TrainConfig
from engine.data.sessions import EditorPage
from engine.training.diagnosis import diagnose
from engine.training.runner import RunSummary
from tests.test_dataset_handlers import FakeStudio as DatasetStudio
from tests.test_dataset_handlers import dataset_view, request, write_rows
from tests.test_params_handlers import FIELDS as PARAMS_FIELDS
from tests.test_params_handlers import FakeStudio as ParamsStudio
from tests.test_training_tab import VIEW as TRAINING_VIEW
from ui import dataset_tab, editor_panel, journey, params_tab, present, training_tab
from ui.editor_panel import EditorView
from ui.i18n import t
from ui.params_tab import ParamsView

FALLING = [{"step": step, "loss": 3.0 - 0.05 * step} for step in range(1, 30)]


# ---- tabs: marks and next steps -------------------------------------------------------------------------------

def test_tab_labels_carry_their_marks_in_either_language():
    labels = [tab.label for tab in journey.tab_labels("zh", True, False, True, False)]
    assert labels == ["1. 数据集 ✓", "2. 超参数", "3. 训练 ✓", "4. 对话", "5. 盲评", "6. 导出"]
    english = [tab.label for tab in journey.tab_labels("en", False, True, False, True)]
    assert english[1] == t("tab_params", "en") + " ✓" and english[4].endswith(" ✓")
    assert not english[0].endswith("✓") and not english[3].endswith("✓")
    assert journey.MARKS == ("data", "settings", "trained", "studied")


def test_a_next_step_selects_its_tab():
    assert journey.go_to("tab-chat")().selected == "tab-chat"
    assert [tab for tab, _key, _mark in journey.TAB_STEPS] == ["tab-dataset", "tab-params", "tab-training",
                                                                 "tab-chat", "tab-study", "tab-export"]


class MarkStudio:
    """Runs and studies as the studio lists them; `studies` None: the studies cannot be read."""

    def __init__(self, states: list[tuple[RunState, bool]], studies: list[dict] | None) -> None:
        self.states, self.studies = states, studies

    def list_runs(self) -> list[RunSummary]:
        return [RunSummary(f"r{i}", f"runs/r{i}", state, 0.0, adapter, None)
                for i, (state, adapter) in enumerate(self.states)]

    def list_studies(self) -> list[dict]:
        if self.studies is None:
            raise EngineError("study_not_found", {"study_id": 1})
        return self.studies


def test_trained_and_studied_marks_come_from_the_studio():
    assert journey.studio_marks(MarkStudio([(RunState.DONE, True)], [{"votes": 3}])) == (True, True)
    assert journey.studio_marks(MarkStudio([(RunState.FAILED, True), (RunState.DONE, False)],
                                           [{"votes": 0}])) == (False, False)
    assert journey.studio_marks(MarkStudio([(RunState.STOPPED, True)], [])) == (True, False)  # its adapter is there
    assert journey.studio_marks(MarkStudio([], None)) == (False, False)


# ---- the Dataset tab's first screen and mark, the editor shown once rows are there ---------------------------

def test_the_first_screen_checks_the_file_in_the_box_and_marks_usable_data(tmp_path):
    good = write_rows(tmp_path / "good.jsonl", [{"instruction": "Where is my order?", "output": "It ships today."}])
    bad = write_rows(tmp_path / "bad.jsonl", [{"instruction": "Where is my order?", "output": ""}])
    view = dataclasses.replace(dataset_view(["max_length"]), usable="data-mark")
    studio = DatasetStudio()
    shown = dataset_tab.check_on_open(studio, view, "zh", str(good), request("s1"), 256)
    assert shown["data-mark"] is True and "可以开始训练" in shown["summary"] and shown["grid"] is not None
    assert view.checked[-1] == "data-mark"
    assert dataset_tab.check_dataset(studio, view, "en", str(bad), request("s1"), 256)["data-mark"] is False
    blank = dataset_tab.check_on_open(studio, view, "en", "  ", request("s2"), 256)
    assert set(blank) == set(view.checked) and all(isinstance(v, type(gr.skip())) for v in blank.values())
    assert "data-mark" not in dataset_tab.check_dataset(studio, dataset_view(["max_length"]), "en", str(good),
                                                        request("s1"), 256)  # a view without the mark


class EditorStudio:
    """One session ("s1") has rows open."""

    def editor_page(self, session: str, number, size: int, query: str) -> EditorPage | None:
        return EditorPage(pd.DataFrame({"#": [1]}), 1, 1, 1) if session == "s1" else None


def test_the_editor_shows_once_rows_are_open():
    view = EditorView(grid="grid", page="page", info="info", exported="exported", path="path", box="box")
    assert editor_panel.editor_shown(EditorStudio(), view, "en", request("s1"))["box"].visible is True
    assert editor_panel.editor_shown(EditorStudio(), view, "en", request("s2"))["box"].visible is False


# ---- the Hyperparameters tab's mark ---------------------------------------------------------------------------

def test_checked_settings_without_errors_are_marked():
    view = ParamsView(preset="preset", about="about", fields={name: f"field-{name}" for name in PARAMS_FIELDS},
                      trainable="trainable", plan="plan", as_yaml="yaml", as_script="script", settled="mark")
    assert params_tab.check_plan(ParamsStudio(), view, "en", "data/faq.jsonl", None, 12, None)["mark"] is True

    class Blocked(ParamsStudio):
        def plan(self, config: TrainConfig) -> RunPlan:
            return RunPlan(config, [Issue("error", "dataset_empty")])

    shown = params_tab.check_plan(Blocked(), view, "en", "data/faq.jsonl", None, 12, None)
    assert shown["mark"] is False and shown["plan"].startswith("- ❌")


# ---- the Training tab: what Start will train ------------------------------------------------------------------

def planned(config: TrainConfig, rows: int = 120, verdict: str = "fits", errors: list | None = None,
            source: str = "table", measured_start: bool = False) -> RunPlan:
    """A plan of `config` on a checked file of `rows` rows (about 150 tokens each), a minute an epoch and 20 s to
    start and save."""
    checked = SimpleNamespace(summary=SimpleNamespace(rows=rows, tokens_per_epoch=rows * 150))
    memory = SimpleNamespace(verdict=verdict, total=4.4 * 2 ** 30, available=20.9 * 2 ** 30)
    return RunPlan(config, errors or [], dataset=checked, memory=memory,
                   time=SimpleNamespace(seconds_per_epoch=60.0, tokens_per_second=300.0, source=source),
                   start_seconds=20.0, measured_start=measured_start)


def test_the_summary_names_data_model_settings_and_estimate_in_both_languages():
    config = TrainConfig(dataset_path="data/support.jsonl", num_train_epochs=3.0, lora_r=16, learning_rate=2e-4,
                         max_length=256)
    english = present.run_summary(planned(config), "en")
    assert "`support.jsonl` · 120 rows · 18,000 tokens per epoch" in english
    assert f"`{config.model_name_or_path}`" in english
    assert "SFT · LoRA r 16 · learning rate 0.0002 · 3 epoch(s) · max_length 256" in english
    assert "fits (about 4.4 GB of 20.9 GB)" in english
    assert "about 0:01:00 per epoch, 0:03:20 in all (0:00:20 of it to start and save)" in english
    assert "as your last run" not in english
    chinese = present.run_summary(planned(config), "zh")
    assert "120 行" in chinese and "3 轮" in chinese and "放得下" in chinese and "总计约 0:03:20" in chinese
    steps = present.run_summary(planned(config.replace(max_steps=15, per_device_train_batch_size=4)), "en")
    assert "15 step(s)" in steps and "0:00:50 in all" in steps  # 15 of an epoch's 30 steps, and the start
    for measured in (planned(config, source="measured"), planned(config, measured_start=True)):
        assert "as your last run on this computer went" in present.run_summary(measured, "en")
        assert "按这台电脑上次训练的实际速度估算" in present.run_summary(measured, "zh")
    blocked = present.run_summary(planned(config, verdict="will_not_fit", errors=[Issue("error", "dataset_empty")]),
                                  "en")
    assert "will not fit" in blocked and blocked.splitlines()[-1].startswith("- ❌")
    pairs = planned(config.replace(method="dpo"))
    pairs.dataset.summary.tokens_per_epoch = 0  # preference pairs: rows, no SFT token count
    assert "`support.jsonl` · 120 rows" in present.run_summary(pairs, "en")
    assert "120 行" in present.run_summary(pairs, "zh")


class SummaryStudio:
    """Plans like the studio, or refuses a missing file as the studio does."""

    def config_from_form(self, values: dict) -> TrainConfig:
        return TrainConfig().replace(**values)

    def plan(self, config: TrainConfig) -> RunPlan:
        if config.dataset_path == "missing.jsonl":
            raise EngineError("dataset_not_found", {"path": "missing.jsonl"})
        return planned(config)


def test_the_training_tab_summarises_the_run_or_says_why_it_cannot_start():
    view = dataclasses.replace(TRAINING_VIEW, form=["max_steps"])
    shown = training_tab.show_summary(SummaryStudio(), view, "en", " data/support.jsonl ", 4)
    assert "4 step(s)" in shown["summary"] and "`support.jsonl`" in shown["summary"]
    refused = training_tab.show_summary(SummaryStudio(), view, "zh", "missing.jsonl", 4)["summary"]
    assert refused.startswith(t("summary_title", "zh")) and "❌" in refused and "missing.jsonl" in refused


# ---- a finished run is read as its result -------------------------------------------------------------------

def test_a_finished_run_is_worded_as_its_result_not_as_a_run_to_wait_for():
    live = diagnose(FALLING)
    done = diagnose(FALLING, finished=True)
    assert live.kind == done.kind == "healthy" and live.title_code == "diagnosis_healthy"
    assert done.title_code == "diagnosis_result_train" and done.advice_code == "diagnosis_healthy_done_advice"
    assert done.params["first"] == "2.950" and done.params["last"] == "1.550"
    for lang in ("en", "zh"):
        assert present.diagnosis_text(FALLING, lang, finished=True) != present.diagnosis_text(FALLING, lang)
    text = present.diagnosis_text(FALLING, "en", finished=True)
    assert text.startswith("**Training finished: the training loss went from 2.950 to 1.550.**")
    assert "let it finish" not in text and "let it finish" in present.diagnosis_text(FALLING, "en")


def test_a_result_reads_the_held_out_loss_when_there_is_one_and_says_when_there_is_too_little():
    evaluated = FALLING + [{"step": 10, "eval_loss": 2.5}, {"step": 20, "eval_loss": 2.1}]
    found = diagnose(evaluated, finished=True)
    assert found.title_code == "diagnosis_result_heldout" and (found.params["first"], found.params["last"]) == (
        "2.500", "2.100")
    short = diagnose([{"step": 1, "loss": 2.0}], finished=True)
    assert short.title_code == "diagnosis_result_short" and short.advice_code == "diagnosis_warming_up_done_advice"
    assert "1" in present.diagnosis_text([{"step": 1, "loss": 2.0}], "zh", finished=True)
    preferences = [{"step": i, "loss": 0.6, "rewards_margins": 0.1 * i, "rewards_chosen": 0.0,
                    "rewards_accuracies": 0.8} for i in range(8)]
    dpo = diagnose(preferences, finished=True)
    assert dpo.title_code == "diagnosis_dpo_learning" and dpo.advice_code == "diagnosis_dpo_learning_done_advice"
