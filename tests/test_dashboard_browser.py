"""The organiser's side of a blind study in headless Chromium: invite a rater (their link and QR code appear, the
QR code inline in the page and in no file), open the study, and watch the live dashboard pick up the rater's vote."""
from __future__ import annotations

import base64
import os
import shutil

import pytest

from engine.studio import Studio
from tests.conftest import FakeJob
from tests.test_study_tab import FakeChat, files_holding, finished_run, gradio_files, token_of

pytestmark = pytest.mark.browser


def test_the_organiser_invites_a_rater_and_opens_the_study(page, serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    questions = tmp_path / "questions.csv"
    questions.write_text("question\nWhere is my parcel?\nHow do I return a jacket?\n", encoding="utf-8")
    study_id = studio.create_study("Support answers", questions, finished_run(studio))["id"]
    studio.generate_study(study_id)
    url, _app = serve(studio, lang="en")
    page.goto(url)
    page.get_by_text("Fine-tuning studio").wait_for(timeout=60_000)
    page.get_by_role("tab", name="5. Blind study").click()
    page.locator("#study-state").get_by_text("State: draft").wait_for(timeout=60_000)

    page.locator("#invite-name input, #invite-name textarea").first.fill("Dr. Li")
    page.locator("#invite-domain input, #invite-domain textarea").first.fill("logistics")
    before = gradio_files()
    page.get_by_role("button", name="Invite", exact=True).click()
    page.locator("#invite-info").get_by_text("shown only now").wait_for(timeout=60_000)
    link = page.locator("#invite-link input, #invite-link textarea").first.input_value()
    assert link.startswith(f"{url.rstrip('/')}/rate?invite=")
    rater = studio.rater_for_invitation(token_of(link))
    assert rater.name == "Dr. Li" and rater.state == "draft"
    qr = page.locator("#invite-qr img")
    qr.wait_for(timeout=60_000)
    assert qr.bounding_box()["width"] >= 120  # large enough to scan from the screen
    source = qr.get_attribute("src")
    assert source.startswith("data:image/png;base64,") and qr.evaluate("image => image.naturalWidth") >= 150
    assert qr.get_attribute("alt") == "QR code of the link"
    download = page.locator("#invite-qr a[download]")
    assert download.get_attribute("href") == source and download.inner_text() == "Download the QR code"
    assert files_holding(before, base64.b64decode(source.split(",", 1)[1]), token_of(link)) == []
    assert page.locator("#invite-link").get_by_role("button", name="Copy").count() == 1

    page.get_by_role("button", name="Open study").click()
    page.locator("#study-state").get_by_text("State: open").wait_for(timeout=60_000)
    assert studio.study(study_id)["state"] == "open"
    item = studio.next_item(study_id, rater.rater_id)
    studio.vote(study_id, rater.rater_id, item.question_id, "A")
    table = page.locator("#study-raters")
    table.get_by_text("1 / 2").filter(visible=True).first.wait_for(timeout=30_000)  # the timer refreshed it
    table.get_by_text("logistics").filter(visible=True).first.wait_for()
    page.locator("#study-invite").screenshot(path=str(tmp_path / "invite.png"))
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    if os.environ.get("STUDIO_SCREENSHOTS_DIR"):
        for name in ("invite.png", "dashboard.png"):
            shutil.copy(tmp_path / name, os.environ["STUDIO_SCREENSHOTS_DIR"])
