"""The two sides in headless Chromium on a real trained run: Chat's baseline and candidate pickers and the panes'
headings, and the blind study's baseline picker and default criteria, worded in 中文 and in English (the pickers
keep their choice across the switch; screenshots to the `shots` folder)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.studio import Studio
from ui.i18n import t


def pick(page, picker: str, option: str) -> None:
    """Open the dropdown `picker` (an elem id) and choose the option labelled `option`."""
    page.locator(f"#{picker} input").first.click()
    page.get_by_role("option", name=option).click()


def shown_options(page) -> list[str]:
    """The labels of the open dropdown's options (without the mark of the chosen one)."""
    options = page.get_by_role("option")
    options.first.wait_for()
    return [text.replace("✓", "").strip() for text in options.all_inner_texts()]


def adapter_labels(studio: Studio, lang: str) -> list[str]:
    """The run's final adapter and its checkpoints as a picker names them in `lang`, newest first."""
    return [c.run_id if c.step is None else f"{c.run_id} · {t('checkpoint_at_step', lang, step=c.step)}"
            for c in studio.adapter_choices()]


@pytest.mark.slow
@pytest.mark.browser
def test_the_sides_pickers_read_in_chinese_and_english(page, serve, run_copy, shots):
    studio = Studio(run_copy.parent, data_root=run_copy.parent.parent / "data")
    run_id = run_copy.name
    url, _app = serve(studio, "zh")
    page.goto(url)
    page.get_by_role("tab", name=re.compile(t("tab_chat", "zh"))).click()
    baseline, candidate = page.locator("#chat-baseline input").first, page.locator("#chat-run input").first
    expect(baseline).to_have_value("基础模型", timeout=60_000)
    expect(candidate).to_have_value(run_id)
    expect(page.locator("#chat-base")).to_contain_text("基础模型")
    expect(page.locator("#chat-adapter")).to_contain_text(f"训练 {run_id}")
    baseline.click()
    assert shown_options(page) == ["基础模型", *adapter_labels(studio, "zh")]
    assert f"{run_id} · 第 2 步的检查点" in adapter_labels(studio, "zh")
    page.get_by_role("option", name=f"{run_id} · 第 2 步的检查点").click()
    expect(page.locator("#chat-base")).to_contain_text(f"训练 {run_id} · 第 2 步", timeout=30_000)
    page.screenshot(path=str(shots / "chat_sides_zh.png"), full_page=True)

    page.locator("#language").get_by_text("English").click()
    expect(baseline).to_have_value(f"{run_id} · checkpoint at step 2", timeout=30_000)  # kept, reworded
    expect(page.locator("#chat-base")).to_contain_text(f"run {run_id} · step 2", timeout=30_000)
    expect(page.locator("#chat-adapter")).to_contain_text(f"run {run_id}", timeout=30_000)
    candidate.click()
    assert shown_options(page) == adapter_labels(studio, "en")  # the base model is no candidate
    page.keyboard.press("Escape")

    page.get_by_role("tab", name=re.compile(t("tab_study", "en"))).click()
    study_baseline = page.locator("#study-baseline input").first
    expect(study_baseline).to_have_value("Base model", timeout=30_000)
    expect(page.locator("#study-run input").first).to_have_value(run_id)
    expect(page.locator("#study-criteria textarea, #study-criteria input").first).to_have_value(
        "terminology, logic, format")
    pick(page, "study-baseline", f"{run_id} · checkpoint at step 2")
    page.locator("#study-organise").screenshot(path=str(shots / "study_sides_en.png"))
    page.locator("#language").get_by_text("中文").click()
    expect(study_baseline).to_have_value(f"{run_id} · 第 2 步的检查点", timeout=30_000)
    expect(page.locator("#study-criteria textarea, #study-criteria input").first).to_have_value("术语, 逻辑, 格式")
    page.locator("#study-organise").screenshot(path=str(shots / "study_sides_zh.png"))
