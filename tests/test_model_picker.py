"""The model picker's handlers, called directly with a fake Studio (no server, no network), in both languages."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from engine import EngineError, MachineTier, ModelChoice, TrainConfig
from ui import model_picker
from ui.model_picker import PickerView

FORM = ["model_name_or_path", "max_length"]
TIER = MachineTier("gpu_24", "NVIDIA GeForce RTX 4090", 24.0)
ON_DISK = ModelChoice("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", 7.62, "Apache-2.0", ("zh", "en", "+"),
                      32768, True, four_bit=True, on_disk=True, recommended=True, verdict="fits", memory_gb=16.2,
                      seconds_per_epoch=3725.0)
TO_FETCH = ModelChoice("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", 8.03,
                       "Llama 3.1 Community", ("en", "de"), 131072, True, four_bit=True, gated=True,
                       recommended=True, verdict="tight", memory_gb=21.9)
UNKNOWN = ModelChoice("my-model", "/models/my-model", None, on_disk=True)


class FakeStudio:
    """Stands in for Studio: a 24 GB card, three models, downloads recorded (each reports two steps)."""

    def __init__(self, fail: EngineError | None = None) -> None:
        self.configs: list[tuple[TrainConfig, bool]] = []
        self.downloads: list[tuple[str, str, str]] = []
        self.fail = fail

    def config_from_form(self, values: dict) -> TrainConfig:
        return TrainConfig().replace(**{name: v for name, v in values.items() if v is not None})

    def machine_tier(self) -> MachineTier:
        return TIER

    def recommended_models(self, config: TrainConfig, every: bool = False) -> list[ModelChoice]:
        self.configs.append((config, every))
        return [ON_DISK, UNKNOWN, TO_FETCH]

    def download_model(self, model_id: str, source: str, endpoint: str, progress) -> Path:
        if self.fail is not None:
            raise self.fail
        self.downloads.append((model_id, source, endpoint))
        progress(2**30, 4 * 2**30)
        progress(4 * 2**30, 4 * 2**30)
        return Path("/cache/models/downloads") / model_id.replace("/", "--")


@pytest.fixture
def view() -> PickerView:
    return PickerView(machine="machine", table="table", choice="choice", listing="listing", source="source",
                      endpoint="endpoint", status="status", model="model", form=FORM)


def listed(studio: FakeStudio, view: PickerView, lang: str, every: bool = False, chosen: str | None = None) -> dict:
    return model_picker.list_models(studio, view, lang, every, chosen, "data/sample.jsonl", "Qwen/Qwen3-8B", 1024)


def test_the_list_shows_this_computer_and_each_model_worded_in_both_languages(view):
    studio = FakeStudio()
    english, chinese = listed(studio, view, "en"), listed(studio, view, "zh")
    config, every = studio.configs[0]
    assert (config.model_name_or_path, config.max_length, config.dataset_path, every) == \
        ("Qwen/Qwen3-8B", 1024, "data/sample.jsonl", False)
    assert "RTX 4090" in english["machine"] and "24.0 GB" in english["machine"] and "7 to 8 billion" in \
        english["machine"]
    assert "这台电脑" in chinese["machine"] and "70 亿" in chinese["machine"]
    table = english["table"]
    assert table.splitlines()[0] == ("| Model | Size | Licence | Languages | Context | Memory | Time per epoch "
                                     "| Where |")
    assert ("| `Qwen/Qwen2.5-7B-Instruct` | 7.62 B | Apache-2.0 | zh, en, many more | 32k | ✅ fits (16.2 GB, "
            "in 4-bit) | 1:02:05 | 💾 on disk |") in table
    assert "Llama 3.1 Community (licence to accept on the hub)" in table and "⚠️ tight (21.9 GB" in table
    assert "| `my-model` | - | - | - | - | unknown size | - | 💾 on disk |" in table
    assert "装得下" in chinese["table"] and "等多种语言" in chinese["table"] and "需下载" in chinese["table"]
    assert chinese["table"] != table and chinese["table"].count("\n") == table.count("\n")
    radio = english["choice"]
    assert isinstance(radio, gr.Radio) and [value for _label, value in radio.choices] == [
        "Qwen/Qwen2.5-7B-Instruct", "my-model", "meta-llama/Llama-3.1-8B-Instruct"]
    assert radio.choices[0][0] == "💾 Qwen/Qwen2.5-7B-Instruct ✅"
    assert english["listing"] == {"tier": TIER, "models": [ON_DISK, UNKNOWN, TO_FETCH]}


def test_the_whole_list_is_asked_for_and_a_choice_still_listed_is_kept(view):
    studio = FakeStudio()
    shown = listed(studio, view, "en", every=True, chosen="my-model")
    assert studio.configs[-1][1] is True and shown["choice"].value == "my-model"
    assert listed(studio, view, "en", chosen="gone/model")["choice"].value is None


def test_a_language_switch_rewords_the_last_listing(view):
    listing = listed(FakeStudio(), view, "en")["listing"]
    chinese = model_picker.reword(FakeStudio(), view, "zh", listing, "my-model")
    assert "模型 | 参数量" in chinese["table"] and chinese["choice"].value == "my-model"
    empty = model_picker.reword(FakeStudio(), view, "zh", None, None)
    assert empty["table"] == model_picker.t("picker_empty", "zh") != model_picker.t("picker_empty", "en")
    assert empty["machine"] == ""


def test_choosing_a_model_fills_the_base_model_field(view):
    listing = {"tier": TIER, "models": [ON_DISK, UNKNOWN, TO_FETCH]}
    assert model_picker.choose(FakeStudio(), view, "en", "my-model", listing) == {"model": "/models/my-model"}
    assert model_picker.choose(FakeStudio(), view, "en", TO_FETCH.name, listing) == {"model": TO_FETCH.name}
    assert isinstance(model_picker.choose(FakeStudio(), view, "en", None, listing)["model"], type(gr.skip()))


def test_the_mirror_address_box_shows_for_a_mirror_only(view, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    mirror = model_picker.pick_source(FakeStudio(), view, "en", "mirror", "")["endpoint"]
    assert mirror.visible is True and mirror.value == "https://hf-mirror.com"
    hub = model_picker.pick_source(FakeStudio(), view, "en", "hub", "https://my.mirror")["endpoint"]
    assert hub.visible is False and hub.value == "https://my.mirror"


class Recorder:
    """Stands in for gr.Progress: records (fraction, desc)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction, desc=None):
        self.calls.append((fraction, desc))


def test_a_download_shows_progress_and_fills_the_field_with_the_folder(view):
    studio, progress = FakeStudio(), Recorder()
    listing = {"tier": TIER, "models": [ON_DISK, TO_FETCH]}
    shown = model_picker.download(studio, view, "zh", TO_FETCH.name, "ignored", "mirror", "https://hf-mirror.com",
                                  listing, progress=progress)
    assert studio.downloads == [(TO_FETCH.name, "mirror", "https://hf-mirror.com")]
    folder = "/cache/models/downloads/meta-llama--Llama-3.1-8B-Instruct"
    assert shown["model"] == folder and folder in shown["status"] and "已下载" in shown["status"]
    assert progress.calls == [(0.25, "正在下载 meta-llama/Llama-3.1-8B-Instruct：1.00 / 4.00 GB"),
                              (1.0, "正在下载 meta-llama/Llama-3.1-8B-Instruct：4.00 / 4.00 GB")]


def test_a_download_without_a_choice_takes_the_fields_hub_id_or_asks_for_one(view):
    studio = FakeStudio()
    shown = model_picker.download(studio, view, "en", None, " Qwen/Qwen3-4B ", "hub", "", None, progress=Recorder())
    assert studio.downloads == [("Qwen/Qwen3-4B", "hub", "")] and "Qwen/Qwen3-4B" in shown["status"]
    asked = model_picker.download(studio, view, "en", None, "", "hub", "", None, progress=Recorder())
    assert asked["status"] == model_picker.t("picker_choose_first", "en") and len(studio.downloads) == 1


def test_a_model_on_disk_is_not_downloaded_again(view):
    studio = FakeStudio()
    listing = {"tier": TIER, "models": [ON_DISK]}
    shown = model_picker.download(studio, view, "en", ON_DISK.name, "", "hub", "", listing, progress=Recorder())
    assert studio.downloads == [] and shown["model"] == ON_DISK.value and "already" in shown["status"]


@pytest.mark.parametrize(("lang", "words"), [("en", "cannot be reached"), ("zh", "无法连接")])
def test_an_unreachable_source_is_worded_in_the_pages_language(view, lang, words):
    studio = FakeStudio(EngineError("model_source_unreachable", {"name": "x/y", "endpoint": "https://hf-mirror.com"},
                                    hint="hint_local_model"))
    with pytest.raises(gr.Error) as raised:
        model_picker.download(studio, view, lang, None, "x/y", "mirror", "https://hf-mirror.com", None,
                              progress=Recorder())
    assert words in raised.value.message and "https://hf-mirror.com" in raised.value.message


def test_the_picker_sits_under_the_base_model_field_on_the_hyperparameters_tab(tmp_path):
    import ui
    from engine import Studio

    demo = ui.build_app(Studio(tmp_path / "runs", data_root=tmp_path / "data"), "zh")
    ids = [block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)]
    assert ids.index("field-model_name_or_path") < ids.index("model-picker") < ids.index("plan-check")
    for elem_id in ("picker-table", "picker-choice", "picker-source", "picker-endpoint", "picker-download"):
        assert elem_id in ids
    source = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "picker-source")
    assert [label for label, _value in source.choices] == ["Hugging Face Hub 官方", "Hub 镜像站（HF_ENDPOINT）",
                                                           "魔搭社区（ModelScope）"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_tier_and_verdict_the_list_can_give_is_worded(lang):
    from engine.models import catalogue

    for tier in catalogue._list()["tiers"]:
        text = model_picker.machine_text(MachineTier(tier["name"], "GPU", 8.0), lang)
        assert "picker_tier" not in text and text != model_picker.machine_text(
            MachineTier(tier["name"], "GPU", 8.0), "zh" if lang == "en" else "en")
    for verdict in ("fits", "tight", "will_not_fit"):
        choice = ModelChoice("a/b", "a/b", 1.0, verdict=verdict, memory_gb=1.0)
        assert "picker_verdict" not in model_picker.table_markdown([choice], lang)
