"""The adapter package: one zip with the PEFT folder, the model card, config, loss PNG and metrics; written whole."""
from __future__ import annotations

import json
import math
import zipfile
from collections import namedtuple

import pytest

from engine.errors import EngineError
from engine.export.card import card_facts, front_matter
from engine.export.package import package_path, write_adapter_package
from engine.export.source import ExportSource
from engine.training.events import EventLog
from tests.share_fixtures import RUN_ID, make_run
from tests.test_card import STUDY

FOLDER = f"{RUN_ID}-adapter/"


def facts_of(source, study=None):
    return card_facts(source, EventLog.read(source.run_dir / "events.jsonl").since(0)[0], study)


def test_the_zip_holds_the_peft_folder_card_config_chart_and_metrics(tmp_path):
    source = make_run(tmp_path)
    for leftover in ("training_args.bin", "optimizer.pt", "README.md"):
        (source.adapter_dir / leftover).write_bytes(b"not for the package")
    steps = []
    path = write_adapter_package(source, facts_of(source, STUDY), progress=lambda code, done: steps.append((code,
                                                                                                          done)))
    assert path == source.run_dir / "export" / "adapter" / f"{RUN_ID}-adapter.zip" == package_path(source)
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(FOLDER + name for name in (
            "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "tokenizer.json",
            "tokenizer_config.json", "README.md", "config.yaml", "loss.png", "metrics.json"))
        card = archive.read(FOLDER + "README.md").decode("utf-8")
        assert front_matter(card)["library_name"] == "peft"
        assert archive.read(FOLDER + "loss.png").startswith(b"\x89PNG\r\n\x1a\n")
        assert archive.read(FOLDER + "config.yaml") == (source.run_dir / "config.yaml").read_bytes()
        adapter_config = json.loads(archive.read(FOLDER + "adapter_config.json"))
        metrics = json.loads(archive.read(FOLDER + "metrics.json"))
    assert adapter_config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # not this cache
    assert adapter_config["r"] == 16
    assert metrics["eval_loss"] == 1.5 and metrics["perplexity"] == pytest.approx(math.exp(1.5))
    assert metrics["final_train_loss"] == pytest.approx(1.0) and metrics["final_step"] == 10
    assert metrics["study"]["win_rate"] == 0.625 and metrics["study"]["n_raters"] == 3
    fractions = [done for _code, done in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {code for code, _done in steps} == {"engine.export_package_files", "engine.export_package_chart"}
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_a_run_without_losses_still_gets_a_chart_and_null_metrics(tmp_path):
    source = make_run(tmp_path, events=[])
    with zipfile.ZipFile(write_adapter_package(source, facts_of(source))) as archive:
        assert archive.read(FOLDER + "loss.png").startswith(b"\x89PNG")
        metrics = json.loads(archive.read(FOLDER + "metrics.json"))
    assert metrics == {"final_train_loss": None, "final_step": None, "eval_loss": None, "perplexity": None,
                       "study": None}


def test_too_little_disk_space_is_refused_before_writing(tmp_path, monkeypatch):
    source = make_run(tmp_path)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("engine.export.space.shutil.disk_usage", lambda _folder: usage(10, 10, 0))
    with pytest.raises(EngineError) as raised:
        write_adapter_package(source, facts_of(source))
    assert raised.value.code == "export_no_space"
    assert not package_path(source).exists()


def test_an_earlier_package_is_replaced_whole(tmp_path):
    source = make_run(tmp_path)
    first = write_adapter_package(source, facts_of(source))
    first_card = zipfile.ZipFile(first).read(FOLDER + "README.md")
    second = write_adapter_package(source, facts_of(source, STUDY))
    assert second == first and zipfile.ZipFile(second).read(FOLDER + "README.md") != first_card


@pytest.mark.slow
def test_the_unpacked_folder_loads_with_peft_on_the_bundled_model(run_copy, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    source = ExportSource.of(run_copy)
    with zipfile.ZipFile(write_adapter_package(source, facts_of(source))) as archive:
        archive.extractall(tmp_path / "unpacked")
    folder = tmp_path / "unpacked" / f"{run_copy.name}-adapter"
    base = AutoModelForCausalLM.from_pretrained(source.base_folder())
    ids = torch.tensor([[1, 2, 3, 4]])
    expected = PeftModel.from_pretrained(base, source.adapter_dir)(ids).logits
    base = AutoModelForCausalLM.from_pretrained(source.base_folder())
    unpacked = PeftModel.from_pretrained(base, folder)(ids).logits
    assert torch.equal(expected, unpacked)


def test_the_bundled_models_alias_is_named_by_its_hub_id_in_the_adapter_config(tmp_path):
    source = make_run(tmp_path, model_name_or_path="smollm2-135m-instruct")
    with zipfile.ZipFile(write_adapter_package(source, facts_of(source))) as archive:
        adapter_config = json.loads(archive.read(FOLDER + "adapter_config.json"))
    assert adapter_config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
