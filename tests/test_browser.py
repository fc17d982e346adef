"""A user's journey in headless Chromium: switch to 中文, check the dataset, start and stop a run."""
from __future__ import annotations

import os
import shutil

import pytest

from engine.studio import Studio
from tests.conftest import FakeJob

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium")


@pytest.fixture
def page():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser.new_page(viewport={"width": 1280, "height": 1000})
        browser.close()


def test_journey_in_chinese(page, serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=lambda *a: FakeJob(*a, steps=30, delay=0.2))
    url, _app = serve(studio, lang="en")
    page.goto(url)
    page.get_by_text("Fine-tuning studio").wait_for(timeout=60_000)

    page.get_by_label("中文").check()
    page.get_by_role("tab", name="1. 数据集").wait_for()
    page.get_by_role("button", name="加载并检查").click()
    page.locator("#dataset-summary").get_by_text("可以开始训练").wait_for(timeout=60_000)

    page.get_by_role("tab", name="3. 训练").click()
    page.get_by_role("button", name="开始训练").click()
    page.locator("#run-status").get_by_text("训练中").wait_for(timeout=60_000)
    page.get_by_role("button", name="停止").click()
    page.locator("#run-status").get_by_text("已停止").wait_for(timeout=60_000)
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)
    if os.environ.get("STUDIO_SCREENSHOTS"):
        shutil.copy(tmp_path / "training.png", os.environ["STUDIO_SCREENSHOTS"])

    page.reload()  # a reload rebuilds the finished run's status from the event log
    page.get_by_role("tab", name="3. Training").click()
    page.locator("#run-status").get_by_text("Stopped").wait_for(timeout=60_000)


def test_a_rater_judges_in_chinese(page, serve, tmp_path):
    """The organiser's study is ready; a rater switches to 中文, starts, picks "A 更好" (the choices are
    reworded by the switch) and submits; the vote is in SQLite at once."""
    from tests.test_study_tab import FakeChat, finished_run

    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    run_dir = studio.runner.run_dir(finished_run(studio))
    study_id = studio.studies.create_study("客服", [{"prompt": "包裹在哪里？"}, {"prompt": "怎么退货？"}], run_dir)
    studio.studies.generate(study_id, FakeChat())
    url, _app = serve(studio, lang="en")
    page.goto(url)
    page.get_by_text("Fine-tuning studio").wait_for(timeout=60_000)

    page.get_by_label("中文").check()
    page.get_by_role("tab", name="5. 盲评").click()
    page.locator("#rater-name input, #rater-name textarea").first.fill("李医生")
    page.get_by_role("button", name="开始或继续").click()
    page.locator("#rate-progress").get_by_text("已完成 0 / 2 题").wait_for(timeout=60_000)
    page.locator("#rate-choice").get_by_text("A 更好").click()
    page.get_by_role("button", name="提交并下一题").click()
    page.locator("#rate-progress").get_by_text("已完成 1 / 2 题").wait_for(timeout=60_000)
    votes = studio.studies.results(study_id)
    assert [(v["rater"], v["choice"]) for v in votes] == [("李医生", "A")]
    page.screenshot(path=str(tmp_path / "rating.png"), full_page=True)
    if os.environ.get("STUDIO_SCREENSHOTS"):
        shutil.copy(tmp_path / "rating.png", os.environ["STUDIO_SCREENSHOTS"])
