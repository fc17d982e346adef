"""The Hyperparameters tab's handlers, called directly with a fake Studio (no server)."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import gradio as gr
import pytest

from engine import EngineError, Issue, RunPlan, TrainConfig
from ui import forms, params_tab
from ui.params_tab import ParamsView

FIELDS = ["model_name_or_path", "max_steps", "lora_target_modules"]


class FakeStudio:
    """Stands in for Studio: one shipped preset ("tiny"), presets saved in a list, a model with two linear
    layers ("local/model"), every config it is handed recorded."""

    def __init__(self) -> None:
        self.saved: list[str] = []
        self.configs: list[TrainConfig] = []

    def default_config(self) -> TrainConfig:
        return TrainConfig()

    def config_from_form(self, values: dict) -> TrainConfig:
        return TrainConfig().replace(**{name: v for name, v in values.items() if v is not None})

    def presets(self) -> list:
        return [SimpleNamespace(name=name) for name in ["tiny"] + self.saved]

    def apply_preset(self, name: str, base: TrainConfig) -> TrainConfig:
        if name != "tiny":
            raise EngineError("preset_unknown", {"name": name, "available": "tiny"})
        return base.replace(max_steps=2, lora_target_modules=("q_proj",))

    def preset_description(self, name: str, lang: str) -> str:
        return {"en": "A tiny run", "zh": "很短的一次训练"}[lang]

    def save_preset(self, name: str, config: TrainConfig) -> str:
        if name.strip().lower() == "tiny":
            raise EngineError("preset_builtin", {"name": "tiny"})
        self.saved.append(name.strip().lower())
        self.configs.append(config)
        return self.saved[-1]

    def training_script(self, config: TrainConfig) -> str:
        return f"# trains {config.model_name_or_path} for {config.max_steps} steps"

    def plan(self, config: TrainConfig) -> RunPlan:
        self.configs.append(config)
        return RunPlan(config, [Issue("warning", "dataset_too_few_rows", params={"rows": 2, "epochs": 3})])

    def linear_names(self, model: str) -> list[str]:
        if model != "local/model":
            raise EngineError("model_offline", {"name": model})
        return ["q_proj", "v_proj"]

    def trainable_parameters(self, config: TrainConfig) -> tuple[int, int] | None:
        return (4_096, 1_000_000) if config.model_name_or_path == "local/model" else None


@pytest.fixture
def view() -> ParamsView:
    return ParamsView(preset="preset", about="about", fields={name: f"field-{name}" for name in FIELDS},
                      trainable="trainable", plan="plan", as_yaml="yaml", as_script="script")


def test_a_preset_fills_every_field_and_says_what_it_is_for(view):
    out = params_tab.apply_preset(FakeStudio(), view, "zh", "tiny")
    assert out == {"about": "很短的一次训练", "field-model_name_or_path": TrainConfig().model_name_or_path,
                   "field-max_steps": 2, "field-lora_target_modules": ["q_proj"]}
    cleared = params_tab.apply_preset(FakeStudio(), view, "en", "")
    assert cleared["about"] == "" and cleared["field-max_steps"] == TrainConfig().max_steps


def test_an_unknown_preset_is_refused_in_the_page_language(view):
    with pytest.raises(gr.Error, match="没有名为“huge”的预设"):
        params_tab.apply_preset(FakeStudio(), view, "zh", "huge")


def test_saving_a_preset_chooses_it_in_the_picker(view, capsys):
    studio = FakeStudio()
    out = params_tab.save_preset(studio, view, "en", " My-Recipe ", "local/model", 40, ["q_proj"])
    assert out["preset"].value == "my-recipe" and [c[0] for c in out["preset"].choices] == ["", "tiny", "my-recipe"]
    assert studio.configs[0].max_steps == 40 and studio.configs[0].lora_target_modules == ("q_proj",)
    assert "Preset 'my-recipe' saved." in capsys.readouterr().out
    with pytest.raises(gr.Error, match="ships with the studio"):
        params_tab.save_preset(studio, view, "en", "tiny", None, None, None)


def test_the_config_is_shown_as_yaml_and_script_or_as_the_problem(view):
    out = params_tab.show_config(FakeStudio(), view, "en", " data/faq.jsonl ", "local/model", 40, None)
    assert "dataset_path: data/faq.jsonl" in out["yaml"] and "max_steps: 40" in out["yaml"]
    assert out["script"] == "# trains local/model for 40 steps"
    bad = params_tab.show_config(FakeStudio(), view, "en", "", None, "many", None)
    assert bad["yaml"] == bad["script"] and bad["yaml"].startswith("# Setting 'max_steps' needs a int value")


def test_the_plan_lists_the_findings_for_the_form_and_dataset(view):
    studio = FakeStudio()
    out = params_tab.check_plan(studio, view, "en", "data/faq.jsonl", None, 12, None)
    assert out["plan"].startswith("- ⚠️ Only 2 usable row(s) for 3 epoch(s)")
    assert studio.configs[0].dataset_path == "data/faq.jsonl" and studio.configs[0].max_steps == 12
    with pytest.raises(gr.Error, match="needs a int value"):
        params_tab.check_plan(studio, view, "en", "", None, "many", None)


def test_a_blank_path_box_plans_and_shows_a_run_without_a_dataset_as_start_would(view):
    class WithSample(FakeStudio):
        def config_from_form(self, values: dict) -> TrainConfig:
            return super().config_from_form(values).replace(dataset_path="data/sample.jsonl")

    studio = WithSample()
    params_tab.check_plan(studio, view, "en", "  ", None, 12, None)
    assert studio.configs[0].dataset_path == ""  # not the sample the form started from
    assert "dataset_path: ''" in params_tab.show_config(studio, view, "en", "", None, 12, None)["yaml"]


def test_modules_come_from_the_model_or_stay_as_they_are(view):
    found = params_tab.discover_modules(FakeStudio(), view, "en", "local/model", ["v_proj", "k_proj"])
    assert found["field-lora_target_modules"].choices == [("all-linear", "all-linear"), ("q_proj", "q_proj"),
                                                         ("v_proj", "v_proj")]
    assert found["field-lora_target_modules"].value == ["v_proj"]
    reset = params_tab.discover_modules(FakeStudio(), view, "en", "local/model", ["k_proj"])
    assert reset["field-lora_target_modules"].value == ["all-linear"]
    assert params_tab.discover_modules(FakeStudio(), view, "en", "hub/offline", ["q_proj"]) == {
        "field-lora_target_modules": gr.skip()}
    assert params_tab.attention_only(FakeStudio(), view, "en") == {"field-lora_target_modules": forms.ATTENTION_MODULES}
    assert params_tab.all_linear(FakeStudio(), view, "en") == {"field-lora_target_modules": ["all-linear"]}


def test_the_trainable_line_or_nothing(view):
    line = params_tab.trainable_text(FakeStudio(), view, "en", "local/model", None, None)["trainable"]
    assert "4,096" in line and "1,000,000" in line
    assert params_tab.trainable_text(FakeStudio(), view, "en", "unknown/model", None, None) == {"trainable": ""}
    assert params_tab.trainable_text(FakeStudio(), view, "en", None, "many", None) == {"trainable": ""}


def test_every_handler_says_its_inputs_and_outputs():
    handlers = [fn for name, fn in inspect.getmembers(params_tab, inspect.isfunction)
                if fn.__module__ == params_tab.__name__ and not name.startswith("_")
                and list(inspect.signature(fn).parameters)[:3] == ["studio", "view", "lang"]]
    assert len(handlers) >= 8
    assert [fn.__name__ for fn in handlers if not ("Input" in fn.__doc__ and "Output" in fn.__doc__)] == []
