"""The Export tab in headless Chromium on a real trained run: the adapter package, an f16 GGUF with its Modelfile,
the written paths and the `ollama create` line, in English and in Chinese (screenshots to the `shots` folder)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.locales import catalogue_text
from engine.studio import Studio


@pytest.mark.slow
@pytest.mark.browser
def test_the_export_tab_writes_the_package_and_a_gguf_with_its_modelfile(page, serve, run_copy, shots):
    studio = Studio(run_copy.parent, data_root=run_copy.parent.parent / "data")
    url, _app = serve(studio, "en")
    page.goto(url)
    page.get_by_text("Fine-tuning studio").wait_for(timeout=60_000)
    page.get_by_role("tab", name=catalogue_text("ui.tab_export", "en")).click()
    expect(page.locator("#export-run input").first).to_have_value(run_copy.name, timeout=60_000)  # the picker filled
    page.get_by_role("button", name=catalogue_text("ui.export_package", "en")).click()
    paths = page.locator("#export-paths")
    paths.get_by_text(f"{run_copy.name}-adapter.zip").wait_for(timeout=120_000)
    page.locator("#export-gguf-type input").first.fill("f16")
    page.locator("#export-gguf-type input").first.press("Enter")
    page.get_by_role("button", name=catalogue_text("ui.export_ollama", "en")).click()
    paths.get_by_text(str(run_copy / "export" / "adapter" / "Modelfile")).wait_for(timeout=300_000)
    assert paths.get_by_text(f"{run_copy.name}-f16.gguf").count() == 1
    command = page.locator("#export-ollama-command textarea, #export-ollama-command input").first.input_value()
    assert command.startswith("ollama create ") and str(run_copy / "export" / "adapter" / "Modelfile") in command
    assert (run_copy / "export" / "adapter" / f"{run_copy.name}-f16.gguf").is_file()
    page.locator("#export-files").get_by_text("Modelfile").first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "export_en.png"), full_page=True)
    page.locator("#language").get_by_text(catalogue_text("language.name", "zh")).click()
    page.get_by_role("tab", name=catalogue_text("ui.tab_export", "zh")).wait_for(timeout=30_000)
    page.get_by_role("button", name=catalogue_text("ui.export_package", "zh")).wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "export_zh.png"), full_page=True)
