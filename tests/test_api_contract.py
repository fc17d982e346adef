"""The app's API contract: every named endpoint's parameter names, inputs and outputs, in order, as committed.

gradio_client callers (and the other UI tests) pass inputs by position or name and read outputs by position, so a
refactor must not reorder them by accident. To change the contract deliberately, regenerate the snapshot with
`UPDATE_API_CONTRACT=1 .venv/bin/python -m pytest -q tests/test_api_contract.py` and commit `tests/api_contract.json`.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest

import ui
from engine import Studio
from ui.i18n import Texts

SNAPSHOT = Path(__file__).with_name("api_contract.json")
REGENERATE = "UPDATE_API_CONTRACT=1 .venv/bin/python -m pytest -q tests/test_api_contract.py"


class RecordingTexts(Texts):
    """Texts that remember their last instance, so the contract can name components by their label keys."""

    last: Texts | None = None

    def __init__(self, lang: str) -> None:
        super().__init__(lang)
        RecordingTexts.last = self


def _keys_of(texts: Texts) -> dict[int, str]:
    """Component id -> the string key it is worded with (its label's if it has one, else its first prop's)."""
    keys = {}
    for component, props in texts._entries:
        kind, key = props.get("label") or next(iter(props.values()))
        keys.setdefault(component._id, key if kind in ("ui", "label") else f"{kind}:{key}")
    return keys


def _describe(component: dict, keys: dict[int, str]) -> str:
    """`type#elem_id`, else `type@label_key`, else the bare type."""
    elem_id = component["props"].get("elem_id")
    if elem_id:
        return f"{component['type']}#{elem_id}"
    key = keys.get(component["id"])
    return f"{component['type']}@{key}" if key else component["type"]


def _parameters(app, index: int, api_name: str, named: dict) -> list[str]:
    """The endpoint's parameter names as API clients see them (the handler's signature when not documented, none for
    an event run only in the browser)."""
    endpoint = named.get(f"/{api_name}")
    if endpoint is not None:
        return [parameter["parameter_name"] for parameter in endpoint["parameters"]]
    if app.fns[index].fn is None:
        return []  # an event run only in the browser (`js=`) has no Python parameters
    return [name for name, parameter in inspect.signature(app.fns[index].fn).parameters.items()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)]


def live_contract(tmp_path: Path, monkeypatch) -> dict:
    """The contract of `build_app(Studio(...))` as it is built now."""
    monkeypatch.setattr(ui, "Texts", RecordingTexts)
    app = ui.build_app(Studio(tmp_path / "runs", data_root=tmp_path / "data"))
    keys = _keys_of(RecordingTexts.last)
    components = {component["id"]: component for component in app.config["components"]}
    named = app.get_api_info()["named_endpoints"]
    contract = {}
    for index, dependency in enumerate(app.config["dependencies"]):
        api_name = dependency.get("api_name")
        if not api_name:
            continue
        contract[api_name] = {
            "visibility": dependency["api_visibility"],
            "parameters": _parameters(app, index, api_name, named),
            "inputs": [_describe(components[i], keys) for i in dependency["inputs"]],
            "outputs": [_describe(components[i], keys) for i in dependency["outputs"]],
        }
    return contract


def _differences(expected: dict, actual: dict) -> list[str]:
    """One line per endpoint added, removed or changed, naming what changed."""
    lines = [f"new endpoint {name}" for name in actual if name not in expected]
    lines += [f"missing endpoint {name}" for name in expected if name not in actual]
    for name in expected.keys() & actual.keys():
        for part in ("visibility", "parameters", "inputs", "outputs"):
            if expected[name][part] != actual[name][part]:
                lines.append(f"{name}.{part}: expected {expected[name][part]}, got {actual[name][part]}")
    return sorted(lines)


def test_every_named_endpoint_matches_the_committed_contract(tmp_path, monkeypatch):
    contract = live_contract(tmp_path, monkeypatch)
    if os.environ.get("UPDATE_API_CONTRACT") == "1":
        SNAPSHOT.write_text(json.dumps(contract, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        pytest.skip(f"wrote {SNAPSHOT.name}: review its diff and commit it")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    differences = _differences(expected, contract)
    assert not differences, ("the app's API contract changed:\n  " + "\n  ".join(differences) +
                             f"\nIf this is deliberate, regenerate the snapshot with `{REGENERATE}` and commit it.")


def test_the_contract_names_set_language_outputs_in_page_order(tmp_path, monkeypatch):
    outputs = live_contract(tmp_path, monkeypatch)["set_language"]["outputs"]
    assert outputs[:3] == ["markdown@title", "radio#language", "markdown@subtitle"]
    assert outputs.index("textbox#dataset-path") < outputs.index("slider#field-max_steps")
