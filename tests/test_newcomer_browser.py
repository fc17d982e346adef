"""The newcomer's first screen and every tab in headless Chromium, in English and 中文: the sample is checked when the
page opens, the next-step buttons switch tabs, and no English text of ours is left on any tab in 中文."""
from __future__ import annotations

import re
import time

import pytest

from engine.locales import catalogue
from engine.studio import Studio
from tests.conftest import FakeJob
from ui.journey import TAB_STEPS

pytestmark = pytest.mark.browser

# what the page shows that is data, not our words (the sample's rows, the model's view of one)
DATA_AREAS = ("#editor-grid", "#preview-text")
# Gradio's own words in a file box, which the page must word too
GRADIO_UPLOAD_TEXTS = ("Drop File Here", "Click to Upload")
MIN_LETTERS = 4  # shorter pieces ("OK", "r") are too often part of names and code


def english_pieces() -> set[str]:
    """The literal pieces of the English catalogue's `ui.` texts that differ in 中文 (between the `{params}`, without
    Markdown marks), skipping the languages' own names and technical terms the Chinese text keeps as they are (LoRA,
    JSONL, max_length)."""
    english, chinese = catalogue().texts["en"], catalogue().texts["zh"]
    names = {texts["language.name"] for texts in catalogue().texts.values()}  # the switch shows each in its own
    pieces = set(GRADIO_UPLOAD_TEXTS)
    for key, text in english.items():
        if not key.startswith("ui.") or chinese.get(key, text) == text:
            continue
        for piece in re.split(r"\{[^}]*\}|[*#`>|]|\]\(.*?\)|[\[\]]", text):
            piece = piece.strip(" .,:;·…→←()-–—!?\"'\n")
            if sum(ch.isalpha() for ch in piece) >= MIN_LETTERS and piece not in chinese[key] and \
                    not re.fullmatch(r"[\w./-]*[_/.][\w./-]*", piece):
                pieces.add(piece)
    chinese_words = "\n".join(text for key, text in chinese.items() if key.startswith("ui."))
    kept = {piece for piece in pieces  # a column name the Chinese texts use as it is (`domain`) may show in 中文
            if not re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", chinese_words)}
    return kept - names


def left_in_english(page, pieces: set[str], within_s: float = 30) -> set[str]:
    """The pieces of `pieces` still found as whole words in the page's visible text (data areas left out) after
    `within_s` seconds; empty as soon as none is left (the tabs' rewordings land a moment after the page's words)."""
    deadline = time.monotonic() + within_s
    while True:
        shown = page.locator("body").inner_text()
        for area in DATA_AREAS:
            if page.locator(area).count() and page.locator(area).first.is_visible():
                shown = shown.replace(page.locator(area).first.inner_text(), "")
        found = {piece for piece in pieces if re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", shown)}
        if not found or time.monotonic() > deadline:
            return found
        page.wait_for_timeout(500)


def test_first_screen_next_steps_and_every_tab_in_chinese(page, serve, shots, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    url, _app = serve(studio, lang="en")
    page.goto(url)
    page.locator("#dataset-summary").get_by_text("Ready to train").wait_for(timeout=90_000)  # checked on opening
    page.locator("#editor-grid").get_by_text("How long does shipping usually take?").wait_for()
    page.get_by_role("tab", name="1. Dataset ✓").wait_for()
    assert not page.locator("#dataset-path").is_visible()  # the server path is the secondary way, folded away
    page.screenshot(path=str(shots / "newcomer-en-tab-dataset.png"), full_page=True)

    page.locator("#next-params").click()  # one next step at a time
    page.locator("#plan-check").wait_for()
    page.locator("#next-training").click()
    page.locator("#run-summary").get_by_text("customer_service.jsonl").wait_for(timeout=60_000)
    assert "120 rows" in page.locator("#run-summary").inner_text()
    page.screenshot(path=str(shots / "newcomer-en-tab-training.png"), full_page=True)

    page.locator("#language").get_by_label("中文").check()
    page.get_by_role("tab", name="1. 数据集 ✓").wait_for(timeout=60_000)  # the mark survives the switch
    page.locator("footer").get_by_text("设置").wait_for(timeout=60_000)  # Gradio's own words follow the switch
    pieces, left = english_pieces(), {}
    for tab_id, key, _mark in TAB_STEPS:
        page.get_by_role("tab", name=catalogue().texts["zh"][f"ui.{key}"]).click()
        page.locator(f"#{tab_id}").wait_for()
        if tab_id == "tab-dataset":
            page.locator("#dataset-summary").get_by_text("可以开始训练").wait_for(timeout=60_000)
        if tab_id == "tab-training":
            page.locator("#run-summary").get_by_text("点击“开始训练”将会训练的内容").wait_for(timeout=60_000)
        found = left_in_english(page, pieces)
        page.screenshot(path=str(shots / f"newcomer-zh-{tab_id}.png"), full_page=True)
        if found:
            left[tab_id] = sorted(found)
    assert left == {}, f"English left on the page in 中文: {left}"
