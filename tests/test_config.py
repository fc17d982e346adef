"""TrainConfig: defaults, YAML round trip, coercion, unknown keys, validation and field metadata."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.config import FIELDS, GROUPS, TrainConfig, coerce, field_kind, parse_assignments
from engine.errors import EngineError, errors_of, warnings_of

SAMPLE = str(Path(__file__).resolve().parent.parent / "engine" / "data" / "samples" / "customer_service.jsonl")


def codes(issues):
    return [i.code for i in issues]


def error_fields(config):
    return {(i.code, i.field) for i in errors_of(config.validate())}


# ---- defaults -------------------------------------------------------------------------------
def test_defaults_validate_clean_except_dataset():
    issues = TrainConfig().validate()
    assert [(i.severity, i.code, i.field) for i in issues] == [("error", "config_no_dataset", "dataset_path")]


def test_defaults_with_sample_dataset_have_no_issues():
    assert TrainConfig(dataset_path=SAMPLE).validate() == []


def test_default_target_modules_is_a_tuple():
    config = TrainConfig()
    assert config.lora_target_modules == ("all-linear",)
    assert isinstance(config.lora_target_modules, tuple)


# ---- YAML round trip ------------------------------------------------------------------------
def test_yaml_round_trip_of_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(TrainConfig().to_yaml(), encoding="utf-8")
    loaded = TrainConfig.from_yaml(path)
    assert loaded == TrainConfig()
    assert isinstance(loaded.lora_target_modules, tuple)


def test_yaml_round_trip_of_changed_fields(tmp_path):
    config = TrainConfig().replace(lora_r=8, learning_rate=1e-5, lora_target_modules=["q_proj", "v_proj"],
                                   eval_strategy="no", bf16=True, dataset_path="data/中文.jsonl",
                                   num_train_epochs=2.5, max_steps=7)
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    loaded = TrainConfig.from_yaml(path)
    assert loaded == config
    assert loaded.lora_target_modules == ("q_proj", "v_proj")
    assert loaded.eval_strategy == "no"  # not YAML's boolean `no`
    assert loaded.learning_rate == 1e-5
    assert loaded.diff() == {"lora_r": 8, "learning_rate": 1e-5, "lora_target_modules": ["q_proj", "v_proj"],
                             "eval_strategy": "no", "bf16": True, "dataset_path": "data/中文.jsonl",
                             "num_train_epochs": 2.5, "max_steps": 7}


def test_to_dict_has_plain_values():
    data = TrainConfig().to_dict()
    assert list(data) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert data["lora_target_modules"] == ["all-linear"]


def test_from_yaml_over_a_base(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("lora_r: 4\n", encoding="utf-8")
    base = TrainConfig(max_length=128)
    loaded = TrainConfig.from_yaml(path, base=base)
    assert (loaded.lora_r, loaded.max_length) == (4, 128)


def test_from_yaml_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert TrainConfig.from_yaml(path) == TrainConfig()


def test_from_yaml_missing_file(tmp_path):
    with pytest.raises(EngineError) as info:
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
    assert info.value.code == "config_file_missing"


@pytest.mark.parametrize("text", ["lora_r: [1, 2\n", "- just\n- a list\n"])
def test_from_yaml_invalid_file(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EngineError) as info:
        TrainConfig.from_yaml(path)
    assert info.value.code == "config_file_invalid"


def test_from_yaml_unknown_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("lora_rank: 8\n", encoding="utf-8")
    with pytest.raises(EngineError) as info:
        TrainConfig.from_yaml(path)
    assert info.value.code == "config_unknown_key"
    assert info.value.params["key"] == "lora_rank"


# ---- unknown keys ---------------------------------------------------------------------------
def test_from_dict_refuses_unknown_key_with_suggestion():
    with pytest.raises(EngineError) as info:
        TrainConfig.from_dict({"learning_rat": 1e-4})
    assert info.value.code == "config_unknown_key"
    assert info.value.params == {"key": "learning_rat", "suggestion": "learning_rate"}
    assert "learning_rat" in str(info.value) and "learning_rate" in str(info.value)


def test_replace_refuses_unknown_key():
    with pytest.raises(EngineError) as info:
        TrainConfig().replace(lora_dropuot=0.1)
    assert info.value.code == "config_unknown_key"
    assert info.value.params["key"] == "lora_dropuot"
    assert info.value.params["suggestion"] == "lora_dropout"


def test_unknown_key_without_close_match():
    with pytest.raises(EngineError) as info:
        TrainConfig.from_dict({"zzzzzz": 1})
    assert info.value.params == {"key": "zzzzzz", "suggestion": "-"}


def test_replace_returns_a_new_frozen_config():
    base = TrainConfig()
    changed = base.replace(lora_r="8")
    assert changed.lora_r == 8 and base.lora_r == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.lora_r = 4  # type: ignore[misc]


# ---- coercion -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("true", True), ("True", True), ("1", True), ("yes", True), ("on", True), (" TRUE ", True),
    ("false", False), ("0", False), ("no", False), ("off", False), ("False", False),
])
def test_coerce_bool_strings(text, expected):
    assert coerce("bf16", text) is expected


@pytest.mark.parametrize("text,expected", [("8", 8), ("16.0", 16), ("1e2", 100), (" 4 ", 4), (32, 32)])
def test_coerce_int(text, expected):
    value = coerce("lora_r", text)
    assert value == expected and type(value) is int


@pytest.mark.parametrize("text,expected", [("1e-4", 1e-4), ("0.5", 0.5), ("3", 3.0), (2, 2.0)])
def test_coerce_float(text, expected):
    value = coerce("learning_rate", text)
    assert value == expected and type(value) is float


@pytest.mark.parametrize("value,expected", [
    ("q_proj,v_proj", ("q_proj", "v_proj")),
    (" q_proj , v_proj ,", ("q_proj", "v_proj")),
    (["k_proj", "o_proj"], ("k_proj", "o_proj")),
    ("all-linear", ("all-linear",)),
    ("", ()),
])
def test_coerce_tuple(value, expected):
    assert coerce("lora_target_modules", value) == expected


def test_coerce_str():
    assert coerce("dataset_path", "x.jsonl") == "x.jsonl"
    assert coerce("model_name_or_path", 5) == "5"


@pytest.mark.parametrize("name,value", [
    ("bf16", "maybe"), ("bf16", ""), ("lora_r", "eight"), ("lora_r", "8.5"), ("lora_r", ""),
    ("lora_r", None), ("lora_r", "nan"), ("learning_rate", "fast"), ("learning_rate", None),
    ("lora_target_modules", 5),
])
def test_coerce_bad_values(name, value):
    with pytest.raises(EngineError) as info:
        coerce(name, value)
    assert info.value.code == "config_type"
    assert info.value.params["key"] == name
    assert info.value.params["type"] == field_kind(name).__name__


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400"])
def test_coerce_infinite_int_is_a_config_type_error(value):
    with pytest.raises(EngineError) as info:
        coerce("lora_r", value)
    assert info.value.code == "config_type"


def test_coerce_unknown_name():
    with pytest.raises(EngineError) as info:
        coerce("lora_alfa", 3)
    assert info.value.code == "config_unknown_key"
    assert info.value.params["suggestion"] == "lora_alpha"


def test_field_kinds():
    assert field_kind("bf16") is bool
    assert field_kind("lora_r") is int
    assert field_kind("learning_rate") is float
    assert field_kind("dataset_path") is str
    assert field_kind("lora_target_modules") is tuple


# ---- --set assignments ----------------------------------------------------------------------
def test_parse_assignments_typed():
    parsed = parse_assignments(["lora_r=8", "learning_rate = 1e-4", "bf16=true",
                                "lora_target_modules=q_proj,v_proj", "dataset_path=a=b.jsonl"])
    assert parsed == {"lora_r": 8, "learning_rate": 1e-4, "bf16": True,
                      "lora_target_modules": ("q_proj", "v_proj"), "dataset_path": "a=b.jsonl"}
    assert TrainConfig().replace(**parsed).lora_r == 8


def test_parse_assignments_empty():
    assert parse_assignments([]) == {}


@pytest.mark.parametrize("pair", ["noequals", "=5", " =5", ""])
def test_parse_assignments_malformed(pair):
    with pytest.raises(EngineError) as info:
        parse_assignments([pair])
    assert info.value.code == "config_bad_assignment"
    assert info.value.params == {"text": pair}


def test_parse_assignments_unknown_key():
    with pytest.raises(EngineError) as info:
        parse_assignments(["lora_rr=8"])
    assert info.value.code == "config_unknown_key"
    assert info.value.params["key"] == "lora_rr"


def test_parse_assignments_bad_value():
    with pytest.raises(EngineError) as info:
        parse_assignments(["max_steps=many"])
    assert info.value.code == "config_type"


# ---- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("changes,field", [
    ({"lora_r": 0}, "lora_r"),
    ({"lora_r": 257}, "lora_r"),
    ({"learning_rate": 1.0}, "learning_rate"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"eval_split": 0.9}, "eval_split"),
    ({"max_length": 8}, "max_length"),
    ({"max_steps": -2}, "max_steps"),
    ({"lora_dropout": -0.1}, "lora_dropout"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
])
def test_validate_range(changes, field):
    config = TrainConfig(dataset_path=SAMPLE).replace(**changes)
    errors = errors_of(config.validate())
    assert [(i.code, i.field) for i in errors] == [("config_range", field)]
    meta = FIELDS[field].metadata
    assert errors[0].params["min"] == meta["min"] and errors[0].params["max"] == meta["max"]


def test_validate_bounds_are_inclusive():
    config = TrainConfig(dataset_path=SAMPLE).replace(lora_r=1, learning_rate=1e-2, eval_split=0.5,
                                                      max_steps=-1, lora_dropout=0.0)
    assert errors_of(config.validate()) == []


@pytest.mark.parametrize("field,value", [
    ("optim", "adam"), ("lr_scheduler_type", "cosine_restarts"), ("dtype", "float64"),
    ("eval_strategy", "sometimes"), ("bnb_4bit_quant_type", "int4"),
])
def test_validate_bad_choice(field, value):
    config = TrainConfig(dataset_path=SAMPLE).replace(**{field: value})
    issues = errors_of(config.validate())
    assert [(i.code, i.field) for i in issues] == [("config_choice", field)]
    assert issues[0].params["value"] == value


def test_validate_both_quantizations():
    config = TrainConfig(dataset_path=SAMPLE, load_in_4bit=True, load_in_8bit=True)
    assert error_fields(config) == {("config_both_quant", "load_in_8bit")}


def test_validate_both_precisions():
    config = TrainConfig(dataset_path=SAMPLE, bf16=True, fp16=True)
    assert error_fields(config) == {("config_both_precisions", "fp16")}


def test_validate_missing_dataset_file(tmp_path):
    missing = tmp_path / "missing.jsonl"
    issues = errors_of(TrainConfig(dataset_path=str(missing)).validate())
    assert [(i.code, i.field) for i in issues] == [("dataset_not_found", "dataset_path")]
    assert issues[0].params["path"] == str(missing)


def test_validate_no_target_modules():
    config = TrainConfig(dataset_path=SAMPLE).replace(lora_target_modules="")
    assert error_fields(config) == {("config_no_target_modules", "lora_target_modules")}


def test_validate_eval_without_split_is_a_warning():
    config = TrainConfig(dataset_path=SAMPLE, eval_split=0.0, eval_strategy="epoch")
    issues = config.validate()
    assert errors_of(issues) == []
    assert codes(warnings_of(issues)) == ["config_eval_without_split"]
    assert TrainConfig(dataset_path=SAMPLE, eval_split=0.0, eval_strategy="no").validate() == []


def test_validate_reports_several_problems():
    config = TrainConfig(lora_r=0, bf16=True, fp16=True, optim="x")
    assert set(codes(config.validate())) >= {"config_range", "config_both_precisions", "config_choice",
                                             "config_no_dataset"}


# ---- metadata -------------------------------------------------------------------------------
def test_every_field_has_a_known_group():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("group") in GROUPS, f.name


def test_every_group_is_used():
    assert {f.metadata["group"] for f in dataclasses.fields(TrainConfig)} == set(GROUPS)


def test_numeric_fields_have_bounds():
    for f in dataclasses.fields(TrainConfig):
        if field_kind(f.name) in (int, float):
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            assert lo is not None and hi is not None, f.name
            assert lo < hi, f.name
            default = getattr(TrainConfig(), f.name)
            assert lo <= default <= hi, f.name


def test_choice_defaults_are_valid_choices():
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("choices"):
            assert getattr(TrainConfig(), f.name) in f.metadata["choices"], f.name


def test_simple_fields_exist():
    simple = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("simple")}
    assert {"model_name_or_path", "dataset_path", "learning_rate", "lora_r"} <= simple
