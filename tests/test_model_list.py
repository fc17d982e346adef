"""The model picker's list: tiers by machine, the verdicts of the estimate, models on disk first (no network)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import BUNDLED_MODEL_ID, TrainConfig
from engine.models import catalogue
from engine.planning.estimate import DeviceInfo
from engine.presets import apply_preset

GiB = 2**30
RTX_4090 = DeviceInfo("cuda", "NVIDIA GeForce RTX 4090", 24 * GiB, 23 * GiB, bf16=True, cores=8)
RTX_3060 = DeviceInfo("cuda", "NVIDIA GeForce RTX 3060", 12 * GiB, 11 * GiB, bf16=True, cores=8)
LAPTOP = DeviceInfo("cpu", "x86_64", 16 * GiB, 12 * GiB, cores=4)


@pytest.fixture
def empty_disk(tmp_path, monkeypatch):
    """No hub cache and an empty studio cache: nothing is on disk but the bundled model."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "studio"))
    return tmp_path


def qlora() -> TrainConfig:
    return apply_preset("qlora-8b-24gb", TrainConfig())


def write_model(folder: Path, shards: int = 0, architecture: str = "LlamaForCausalLM") -> Path:
    """A model folder with a config and safetensors weights (sharded with an index when `shards`)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "llama", "architectures": [architecture]}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if not shards:
        (folder / "model.safetensors").write_bytes(b"weights")
        return folder
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    index = {"weight_map": {f"layer.{i}": name for i, name in enumerate(names)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    for name in names:
        (folder / name).write_bytes(b"shard")
    return folder


def test_every_listed_model_has_the_fields_the_picker_shows():
    tiers = {tier["name"] for tier in catalogue._list()["tiers"]}
    for item in catalogue.entries():
        assert item["id"].count("/") == 1 and item["params_b"] > 0 and item["licence"], item
        assert item["languages"] and item["context"] >= 2048 and item["chat_template"] is True, item
        assert set(item["tiers"]) <= tiers, item
        assert catalogue._shape(item["id"], item["id"]) is not None, f"no shape for {item['id']}"


@pytest.mark.parametrize(("kind", "memory_gb", "tier"), [
    ("cpu", 64, "cpu"), ("cuda", 8, "gpu_8"), ("cuda", 11.6, "gpu_12"), ("cuda", 16, "gpu_12"),
    ("cuda", 23.6, "gpu_24"), ("cuda", 24, "gpu_24"), ("cuda", 80, "gpu_48")])
def test_the_machine_tier_follows_the_memory(kind, memory_gb, tier):
    assert catalogue.machine_tier(kind, "device", int(memory_gb * GiB)).name == tier


def test_a_24_gb_card_gets_7_to_8b_instruct_models_in_4bit_that_fit(empty_disk):
    models = catalogue.recommended_models(qlora(), RTX_4090, tokens_per_epoch=100_000)
    names = [m.name for m in models if m.recommended]
    assert {"Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct"} <= set(names)
    for model in models:
        if model.recommended:
            assert 7 <= model.params_b <= 10 and model.four_bit, model
            assert model.verdict in ("fits", "tight") and 4 < model.memory_gb < 24, model
            assert model.seconds_per_epoch and model.seconds_per_epoch > 0
    llama = next(m for m in models if m.name == "meta-llama/Llama-3.1-8B-Instruct")
    assert llama.gated and "Llama" in llama.licence and not llama.on_disk


def test_a_12_gb_card_gets_3_to_4b_models(empty_disk):
    recommended = [m for m in catalogue.recommended_models(qlora(), RTX_3060) if m.recommended]
    assert {"Qwen/Qwen2.5-3B-Instruct", "meta-llama/Llama-3.2-3B-Instruct", "microsoft/Phi-3.5-mini-instruct"} \
        <= {m.name for m in recommended}
    assert all(3 <= m.params_b <= 4.5 for m in recommended)
    assert all(m.seconds_per_epoch is None for m in recommended)  # no dataset counted: no time


def test_on_a_cpu_the_bundled_model_comes_first_and_fits(empty_disk, monkeypatch):
    monkeypatch.setattr(catalogue.loader, "bundled_gguf", lambda: Path("bundled.gguf"))
    models = catalogue.recommended_models(TrainConfig(), LAPTOP, tokens_per_epoch=20_000)
    first = models[0]
    assert first.name == BUNDLED_MODEL_ID and first.on_disk and first.verdict == "fits" and not first.four_bit
    assert all(m.params_b < 1 for m in models)
    assert [m.name for m in models if not m.on_disk] == ["HuggingFaceTB/SmolLM2-360M-Instruct",
                                                         "Qwen/Qwen2.5-0.5B-Instruct"]


def test_a_big_model_does_not_fit_a_laptop_and_the_whole_list_shows_it(empty_disk):
    models = {m.name: m for m in catalogue.recommended_models(TrainConfig(), LAPTOP, every=True)}
    assert len(models) == len(catalogue.entries())
    big = models["Qwen/Qwen2.5-14B-Instruct"]
    assert big.verdict == "will_not_fit" and not big.recommended and big.memory_gb > LAPTOP.free_bytes / GiB


def test_models_on_disk_come_first_from_the_hub_cache_the_downloads_and_the_current_folder(empty_disk, monkeypatch):
    monkeypatch.setattr(catalogue.loader, "bundled_gguf", lambda: None)
    snapshot = empty_disk / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc123"
    write_model(snapshot, shards=2)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123", encoding="utf-8")
    write_model(empty_disk / "hub" / "models--BAAI--bge-m3" / "snapshots" / "def456", architecture="XLMRobertaModel")
    write_model(catalogue.download_folder("Qwen/Qwen3-8B"))
    write_model(catalogue.downloads_root() / ".partial-hub-meta-llama--Llama-3.1-8B-Instruct")  # staged: not whole
    own = write_model(empty_disk / "my-model")
    models = catalogue.recommended_models(qlora().replace(model_name_or_path=str(own)), RTX_4090)
    on_disk = [m for m in models if m.on_disk]
    assert [m.name for m in on_disk] == ["Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-8B", "my-model"]
    assert models[:3] == on_disk
    by_name = {m.name: m for m in models}
    assert by_name["Qwen/Qwen2.5-7B-Instruct"].value == "Qwen/Qwen2.5-7B-Instruct"  # the loader finds it there
    assert by_name["Qwen/Qwen3-8B"].value == str(catalogue.download_folder("Qwen/Qwen3-8B"))
    assert by_name["my-model"].value == str(own) and by_name["my-model"].verdict is None  # its config has no sizes
    assert not by_name["meta-llama/Llama-3.1-8B-Instruct"].on_disk


def test_a_model_missing_a_shard_is_not_whole(tmp_path):
    folder = write_model(tmp_path / "sharded", shards=3)
    assert catalogue.is_complete(folder)
    (folder / "model-00002-of-00003.safetensors").unlink()
    assert not catalogue.is_complete(folder)
    assert not catalogue.is_complete(write_model(tmp_path / "plain").parent / "nothing")
    (tmp_path / "plain" / "model.safetensors").unlink()
    assert not catalogue.is_complete(tmp_path / "plain")


def test_the_studio_lists_this_machines_models_with_the_sample_datasets_time(tmp_path):
    """No fake: this machine's device, the bundled model's tokenizer counting the sample dataset."""
    from engine import SAMPLE_DATASET, Studio

    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    config = studio.default_config().replace(dataset_path=str(SAMPLE_DATASET))
    tier = studio.machine_tier()
    models = studio.recommended_models(config)
    assert models and all(m.recommended or m.on_disk for m in models)
    assert {m.name for m in models if m.recommended} == {
        item["id"] for item in catalogue.entries() if tier.name in item["tiers"]}
    if catalogue.loader.bundled_gguf() is not None:
        bundled = models[0]
        assert bundled.name == BUNDLED_MODEL_ID and bundled.on_disk and bundled.verdict in ("fits", "tight")
        assert bundled.seconds_per_epoch and bundled.seconds_per_epoch > 0
    assert len(studio.recommended_models(config, every=True)) >= len(catalogue.entries())
