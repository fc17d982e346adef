"""A rater on a phone in headless Chromium: opens their invitation link to a 中文 study, judges with the keyboard."""
from __future__ import annotations

import os
import shutil

import pytest

from engine.studio import Studio
from tests.conftest import FakeJob
from tests.test_study_tab import FakeChat, finished_run

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    """A page in headless Chromium with a phone's viewport."""
    return browser.new_page(viewport=PHONE)


def test_a_rater_on_a_phone_judges_with_the_keyboard_in_chinese(phone, serve, tmp_path):
    """"2" chooses "B 更好", Enter submits: the page says what was saved, the progress moves, the vote is in
    SQLite; the answers stack and nothing is wider than the phone."""
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    run_dir = studio.runner.run_dir(finished_run(studio))
    study_id = studio.studies.create_study("客服", [{"prompt": "包裹在哪里？"}, {"prompt": "怎么退货？"}], run_dir,
                                           criteria=["术语"], lang="zh")
    studio.studies.generate(study_id, FakeChat())
    invitation = studio.invite_rater(study_id, "李医生")
    url, _app = serve(studio, lang="en")
    phone.goto(f"{url}rate?invite={invitation.token}")
    phone.locator("#portal-progress").get_by_text("已评 0 / 2 题").wait_for(timeout=60_000)
    phone.locator("#portal-header").get_by_text("李医生，您好").wait_for()

    phone.keyboard.press("2")
    assert phone.locator("#portal-choice input[value='B']").is_checked()
    phone.keyboard.press("Enter")
    phone.locator("#portal-saved").get_by_text("已保存 ✓ 第 1 题的回答").wait_for(timeout=60_000)
    phone.locator("#portal-progress").get_by_text("已评 1 / 2 题").wait_for()
    assert [(v["rater"], v["choice"]) for v in studio.studies.results(study_id)] == [("李医生", "B")]

    a, b = (phone.locator(f"#portal-answer-{side}").bounding_box() for side in ("a", "b"))
    assert b["y"] > a["y"] + a["height"] and abs(a["x"] - b["x"]) < 1  # one above the other, aligned
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path=str(tmp_path / "portal-phone.png"), full_page=True)
    if os.environ.get("STUDIO_SCREENSHOTS_DIR"):
        shutil.copy(tmp_path / "portal-phone.png", os.environ["STUDIO_SCREENSHOTS_DIR"])
