"""The System panel: the system check's lines with ✓/⚠/✗ and their fixes in the page's language, checked once on
opening, again on *Check again*, reworded on a language switch without checking again; closed below the tabs."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

import ui
from engine import Studio
from engine.system import doctor, probes
from ui import system_panel
from ui.i18n import t

CHECKS = [doctor.check_python((3, 11, 7)),
          doctor.check_gpu(probes.TorchFacts("2.13.0+cpu"), None, probes.DriverFacts()),
          doctor.check_bundled_model(None)]


class CountingStudio:
    """A studio stand-in whose runs folder the panel checks."""

    def __init__(self, runs_root: Path) -> None:
        self.runner = SimpleNamespace(runs_root=runs_root)


def test_the_lines_carry_marks_titles_messages_and_fixes_in_both_languages():
    english, chinese = system_panel.checks_markdown(CHECKS, "en"), system_panel.checks_markdown(CHECKS, "zh")
    assert "- ✓ **Python**: Python 3.11.7 is supported." in english
    assert "- ⚠ **GPU**: No NVIDIA GPU found" in english and "- ✗ **Bundled model**" in english
    assert english.count(t("system_fix", "en")) == 2, "a fix under each warning and problem, none under ok"
    assert "- ⚠ **显卡（GPU）**: 没有找到 NVIDIA 显卡" in chinese
    assert chinese.count(t("system_fix", "zh")) == 2 and t("system_intro", "zh") in chinese
    assert system_panel.checks_markdown(None, "en") == t("system_intro", "en") + "\n"


def test_opening_checks_once_and_check_again_checks_anew(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(system_panel, "system_checks", lambda runs_dir: asked.append(runs_dir) or CHECKS)
    studio = CountingStudio(tmp_path / "runs")
    checks, shown = system_panel.first_check(studio, "zh", None)
    assert checks == CHECKS and "Python 版本" in shown and asked == [tmp_path / "runs"]
    assert system_panel.first_check(studio, "zh", checks) == (gr.skip(), gr.skip()) and len(asked) == 1
    system_panel.check_now(studio, "en")
    assert len(asked) == 2


def test_the_panel_sits_closed_below_the_tabs_and_follows_the_language(tmp_path):
    demo = ui.build_app(Studio(tmp_path / "runs", data_root=tmp_path / "data"), "zh")
    components = {block["props"].get("elem_id"): block for block in demo.config["components"]}
    panel = components["system"]
    assert panel["props"]["open"] is False and panel["props"]["label"] == t("system_title", "zh")
    assert components["system-recheck"]["props"]["value"] == t("system_recheck", "zh")
    assert t("system_intro", "zh") in components["system-report"]["props"]["value"]
    ids = [block["id"] for block in demo.config["components"]]
    assert ids.index(panel["id"]) > ids.index(components["tab-export"]["id"])
    names = {dependency.get("api_name") for dependency in demo.config["dependencies"]}
    assert {"system_check", "system_recheck"} <= names
