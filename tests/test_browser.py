"""A user's journey in headless Chromium: switch to 中文, check the dataset, start and stop a run."""
from __future__ import annotations

import os
import shutil

import pytest

from engine.studio import Studio
from tests.conftest import FakeJob

pytestmark = pytest.mark.browser


def test_journey_in_chinese(page, serve, tmp_path):
    # long enough (20 s) to be stopped well before its end on a busy machine
    studio = Studio(tmp_path / "runs", job_factory=lambda *a: FakeJob(*a, steps=100, delay=0.2))
    url, _app = serve(studio, lang="en")
    page.goto(url)
    page.get_by_text("Fine-tuning studio").wait_for(timeout=60_000)

    page.locator("#language").get_by_label("中文").check()
    page.get_by_role("tab", name="1. 数据集").wait_for()
    page.get_by_text("使用这台电脑磁盘上的文件").click()  # the server path is folded away: uploads come first
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

