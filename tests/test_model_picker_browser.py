"""The model picker in headless Chromium: open it, read this computer's models, switch to 中文, choose one into the
base-model field, and see the worded refusal of a download offline (no network here)."""
from __future__ import annotations

import re

import pytest

from engine import Studio
from ui.i18n import t

pytestmark = pytest.mark.browser


def test_the_picker_lists_chooses_and_refuses_offline_in_both_languages(page, serve, shots, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the page's first handlers load tokenizers on several threads at once, and a first import of transformers on
    # two threads at once fails (transformers 5.x); the server runs in this process, so import it here first
    from transformers import AutoTokenizer  # noqa: F401
    url, _app = serve(Studio(tmp_path / "runs", data_root=tmp_path / "data"), lang="en")
    page.goto(url)
    page.get_by_role("tab", name=re.compile(t("tab_params", "en"))).click()
    page.locator("#model-picker").get_by_text(t("picker_title", "en")).click()
    table = page.locator("#picker-table")
    table.get_by_text("SmolLM2-135M-Instruct").wait_for(timeout=120_000)
    assert "Time per epoch" in table.inner_text() and "💾 on disk" in table.inner_text()
    assert "This computer" in page.locator("#picker-machine").inner_text()

    page.locator("#language").get_by_label("中文").check()
    table.get_by_text("每轮时间").wait_for(timeout=30_000)
    assert "装得下" in table.inner_text()
    page.locator("#picker-choice").get_by_text("Qwen/Qwen2.5-0.5B-Instruct").click()
    model_field = page.locator("#field-model_name_or_path input")
    page.wait_for_function("() => document.querySelector('#field-model_name_or_path input').value"
                           " === 'Qwen/Qwen2.5-0.5B-Instruct'", timeout=30_000)
    assert model_field.input_value() == "Qwen/Qwen2.5-0.5B-Instruct"
    page.get_by_role("button", name=t("picker_download", "zh")).click()
    page.get_by_text("无法连接 Hub").first.wait_for(timeout=30_000)
    page.locator("#model-picker").screenshot(path=str(shots / "model-picker-zh.png"))
