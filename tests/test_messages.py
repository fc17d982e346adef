"""Every code the engine can emit has an English and a Chinese sentence; render never raises."""
from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from engine.errors import EngineError, Issue
from engine.locales import LANGS, message_codes, render, render_error, wordings
from engine.training.events import RunState

ENGINE = Path(__file__).resolve().parent.parent / "engine"
CODE_PREFIX = re.compile(r"^(hint|progress|cli|state)_[a-z0-9_]+$")


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _const(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def used_codes() -> dict[str, set[str]]:
    """code -> files that use it: EngineError/Issue codes, hint=, message=, progress(), render() and
    any literal that looks like a hint_/progress_/cli_/state_ code."""
    found: dict[str, set[str]] = {}

    def add(code: str | None, where: str) -> None:
        if code:
            found.setdefault(code, set()).add(where)

    for path in sorted(ENGINE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_PREFIX.match(node.value):
                add(node.value, where)
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name == "EngineError" and node.args:
                add(_const(node.args[0]), where)
            if name == "Issue" and len(node.args) >= 2:
                add(_const(node.args[1]), where)
            if name in ("render", "progress") and node.args:
                add(_const(node.args[0]), where)
            for keyword in node.keywords:
                if keyword.arg in ("hint", "message", "code"):
                    add(_const(keyword.value), where)
            if name == "get" and len(node.args) == 2 and _const(node.args[0]) == "code":
                add(_const(node.args[1]), where)  # error.get("code", "train_failed")
    for state in RunState:
        found.setdefault("state_" + state.value, set()).add("events.py")
    return found


USED = used_codes()


def test_the_scan_finds_codes():
    expected = {"config_unknown_key", "config_type", "config_range", "dataset_bad_json", "dataset_duplicate",
                "busy", "train_failed", "out_of_memory", "model_offline", "preset_unknown",
                "hint_fix_rows", "hint_debug", "progress_convert", "progress_load_data", "progress_load_model",
                "cli_stopping", "cli_adapter_saved", "state_DONE", "state_FAILED"}
    assert expected <= set(USED)


@pytest.mark.parametrize("code", sorted(USED))
def test_used_code_has_both_languages(code):
    assert code in message_codes(), f"{code} (used in {sorted(USED[code])}) has no wording in engine/locales/"
    en, zh = wordings(code, "en", "zh")
    assert en.strip() and zh.strip()


@pytest.mark.parametrize("code", sorted(message_codes()))
def test_every_message_has_two_languages(code):
    texts = wordings(code)
    assert isinstance(texts, tuple) and len(texts) == len(LANGS) == 2
    en, zh = wordings(code, "en", "zh")
    assert en.strip() and zh.strip()
    if code != "no_eval_loss":  # a placeholder dash
        assert zh != en, code
        assert re.search(r"[\u4e00-\u9fff]", zh), f"{code}: no Chinese in {zh!r}"


@pytest.mark.parametrize("code", sorted(message_codes()))
def test_both_languages_take_the_same_params(code):
    fields = [{name for _text, name, _spec, _conv in string.Formatter().parse(t) if name} for t in wordings(code)]
    assert fields[0] == fields[1], code


def test_render_fills_params():
    assert render("config_unknown_key", {"key": "lora_rr", "suggestion": "lora_r"}) == \
        "Unknown setting 'lora_rr'. Did you mean 'lora_r'?"
    zh = render("config_unknown_key", {"key": "lora_rr", "suggestion": "lora_r"}, "zh")
    assert "lora_rr" in zh and "lora_r" in zh and "未知" in zh
    assert render("dataset_bad_json", {"row": 3, "detail": "Expecting value"}) == \
        "Row 3 is not valid JSON (Expecting value)."


def test_render_ignores_extra_params():
    assert render("dataset_empty", {"row": None, "field": None, "extra": 1}) == "The dataset has no rows."


@pytest.mark.parametrize("code", sorted(message_codes()))
@pytest.mark.parametrize("lang", ["en", "zh", "fr", ""])
def test_render_never_raises_on_missing_params(code, lang):
    assert isinstance(render(code, None, lang), str)
    assert isinstance(render(code, {}, lang), str)
    assert render(code, {"row": 1}, lang)


def test_render_unknown_code_falls_back_to_the_code():
    assert render("no_such_code", {"x": 1}, "zh") == "no_such_code"


def test_render_unknown_language_is_english():
    assert render("state_DONE", lang="de") == "Done"


def test_render_with_odd_values():
    text = render("config_type", {"key": "lora_r", "value": "{not a field}", "type": "int"})
    assert "{not a field}" in text
    assert render("config_range", {"field": "x", "value": None, "min": None, "max": None})


def test_render_error_adds_the_hint():
    error = EngineError("dataset_not_found", {"path": "x.jsonl"}, hint="hint_check_path")
    assert render_error(error, "en") == "Dataset file x.jsonl does not exist. Check the path and the file name."
    zh = render_error(error, "zh")
    assert zh.startswith("数据集文件 x.jsonl 不存在。") and zh.endswith("请检查路径和文件名。")
    assert str(error) == render_error(error, "en")
    assert render_error(EngineError("busy", {"run_id": "r1"}), "en") == \
        "A training run is already in progress (r1). Wait for it or stop it first."


def test_issue_to_dict_words_the_code():
    issue = Issue("error", "dataset_missing_field", row=4, field="output")
    en, zh = issue.to_dict("en"), issue.to_dict("zh")
    assert en == {"code": "dataset_missing_field", "row": 4, "field": "output",
                  "message": "Row 4: the field 'output' is missing or empty."}
    assert zh["message"] == "第 4 行：字段“output”缺失或为空。"
