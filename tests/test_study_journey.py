"""The whole blind study in headless Chromium, as its people live it: the organiser (logged in, English studio)
invites two raters to a 中文 study and opens it; 李医生 judges every item on a phone (keyboard and taps, leaves
and comes back, changes an answer with Back); 王律师 judges two; the organiser watches the live dashboard and
unblinds. Nothing a rater's page or its responses hold names the adapter, the base model, the run or the model."""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.chat.inference import AnswerPair
from engine.studio import Studio
from tests.conftest import FakeJob
from tests.test_study_tab import FakeChat, finished_run, token_of
from ui.login import Login

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MARKDOWN_QUESTION = "如何导出月度报表？"
QUESTIONS = ["包裹在哪里？", "怎么退货？", MARKDOWN_QUESTION, "可以修改收货地址吗？"]
MARKDOWN_ANSWER = ("**步骤**\n\n- 打开 *报表* 页面\n- 选择月份，点击 **导出**\n\n"
                   "```bash\nreport export --month 2024-05 --format xlsx --output ~/Downloads/monthly-report.xlsx\n```")
# every fetch the page makes (the queue's event streams included) is copied here, to check what raters received
RESPONSE_SPY = """
window.__received = [];
const originalFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await originalFetch(...args);
  if (response.body) {
    const reader = response.clone().body.getReader();
    const decoder = new TextDecoder();
    (async () => {
      for (let part = await reader.read(); !part.done; part = await reader.read()) {
        window.__received.push(decoder.decode(part.value, {stream: true}));
      }
    })().catch(() => {});
  }
  return response;
};
"""


class MarkdownChat(FakeChat):
    """FakeChat whose adapter answers MARKDOWN_QUESTION with bold text, a list and a long line of code."""

    def compare(self, run_dir, messages, params) -> AnswerPair:
        """FakeChat's pair, with the Markdown answer for MARKDOWN_QUESTION."""
        pair = super().compare(run_dir, messages, params)
        return AnswerPair(base=pair.base, adapter=MARKDOWN_ANSWER) if messages[-1]["content"] == MARKDOWN_QUESTION \
            else pair


class Journey:
    """What the test keeps across the journey's steps: the studio, the study, screenshots, the words raters must
    never see, and the rater screens that showed the Markdown answer."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
        self.run_id = finished_run(self.studio)
        run_dir = self.studio.runner.run_dir(self.run_id)
        self.study_id = self.studio.studies.create_study("心内科盲评", [{"prompt": q} for q in QUESTIONS], run_dir,
                                                         criteria=["准确", "清晰"], state="draft", lang="zh")
        self.studio.studies.generate(self.study_id, MarkdownChat())
        self.studio.studies.create_study("Pilot", [{"prompt": "Hello?"}], run_dir, state="closed")  # picked first
        self.secrets = ["adapter", "base", self.run_id, "smollm"]
        self.markdown_seen = 0
        self.too_wide: list[tuple[str, int]] = []  # (question, page width) of screens wider than the phone

    def shoot(self, target, name: str) -> None:
        """A screenshot of a page (full) or an element into tmp_path, copied to STUDIO_SCREENSHOTS_DIR if set."""
        path = self.tmp_path / name
        target.screenshot(path=str(path), **({"full_page": True} if hasattr(target, "goto") else {}))
        if os.environ.get("STUDIO_SCREENSHOTS_DIR"):
            shutil.copy(path, os.environ["STUDIO_SCREENSHOTS_DIR"])

    def look(self, phone, shot: str | None = None) -> str:
        """Check the rater's screen (blind, nothing wider than the phone, Markdown rendered); the question."""
        html = re.sub(r"<base href=[^>]*>", "", phone.content()).lower()  # the page's own <base href>, not a model
        received = "\n".join(phone.evaluate("window.__received")).lower()
        for secret in self.secrets:
            assert secret.lower() not in html and secret.lower() not in received, secret
        shown = phone.locator("#portal-question")
        question = shown.inner_text().strip() if shown.is_visible() else ""  # none on the thank-you screen
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:  # noted, so that the journey goes on and every screen is seen; asserted at the end
            self.too_wide.append((question, width))
        if question == MARKDOWN_QUESTION:
            self.markdown_seen += 1
            answers = phone.locator("#portal-answer-a, #portal-answer-b")
            assert answers.locator("li").count() == 2 and answers.locator("pre code").count() == 1
            assert answers.locator("strong").count() == 2
            assert not any(mark in "".join(answers.all_inner_texts()) for mark in ("**", "```"))
            if self.markdown_seen == 1:
                self.shoot(phone, "rater1-markdown.png")
        if shot:
            self.shoot(phone, shot)
        return question


def organiser_invites(journey: Journey, page, url: str) -> dict[str, str]:
    """The organiser logs in, picks the study, invites both raters (a link and a QR code each), opens it."""
    page.goto(url)
    page.locator("input[type=password]").wait_for(timeout=60_000)
    page.locator("input[type=text]").first.fill("organiser")
    page.locator("input[type=password]").fill("s3cret")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Fine-tuning studio").wait_for(timeout=60_000)
    page.get_by_role("tab", name="5. Blind study").click()
    page.locator("#study-state").get_by_text("State: closed").wait_for(timeout=60_000)
    page.locator("#study-pick input").click()
    page.get_by_role("option", name="心内科盲评").click()
    page.locator("#study-state").get_by_text("State: draft").wait_for(timeout=60_000)
    links, box = {}, page.locator("#invite-link input, #invite-link textarea").first
    for name, domain in (("李医生", "心内科"), ("王律师", "")):
        page.locator("#invite-name input, #invite-name textarea").first.fill(name)
        page.locator("#invite-domain input, #invite-domain textarea").first.fill(domain)
        previous = box.input_value()
        page.get_by_role("button", name="Invite", exact=True).click()
        page.locator("#invite-info").get_by_text(name).wait_for(timeout=60_000)
        expect(box).not_to_have_value(previous)
        links[name] = box.input_value()
        assert links[name].startswith(f"{url.rstrip('/')}/rate?invite=")
        assert journey.studio.rater_for_invitation(token_of(links[name])).name == name
        qr = page.locator("#invite-qr img")
        qr.wait_for(timeout=60_000)
        assert qr.bounding_box()["width"] >= 120
        assert qr.get_attribute("src").startswith("data:image/png;base64,")  # inline: no file of the link
    page.get_by_role("button", name="Open study").click()
    page.locator("#study-state").get_by_text("State: open").wait_for(timeout=60_000)
    journey.shoot(page.locator("#study-invite"), "organiser-invite.png")
    journey.shoot(page, "organiser-open.png")
    return links


def judge(phone, key: str, done: int, total: int = 4) -> None:
    """Choose a verdict with key `key` (1-4), submit with Enter, and wait for the saved line and the progress."""
    phone.keyboard.press(key)
    assert phone.locator("#portal-choice input[type=radio]").nth(int(key) - 1).is_checked()
    phone.keyboard.press("Enter")
    phone.locator("#portal-saved").get_by_text(f"已保存 ✓ 第 {done} 题的回答").wait_for(timeout=30_000)
    phone.locator("#portal-progress").get_by_text(f"已评 {done} / {total} 题").wait_for(timeout=30_000)


def tap_verdict(phone, label: str, value: str) -> None:
    """Tap the verdict worded `label` and check that `value` is chosen, then tap Submit."""
    phone.locator("#portal-choice").get_by_text(label).tap()
    expect(phone.locator(f"#portal-choice input[value='{value}']")).to_be_checked()
    phone.locator("#portal-submit").tap()


def first_rater(journey: Journey, context, link: str) -> list[str]:
    """李医生 on a phone: keyboard, taps, leaves, comes back at item 3, changes item 2 with Back, finishes."""
    phone = context.new_page()
    phone.goto(link)
    phone.locator("#portal-progress").get_by_text("已评 0 / 4 题").wait_for(timeout=60_000)
    phone.locator("#portal-header").get_by_text("李医生，您好").wait_for()
    assert phone.locator("#portal-language input[value='zh']").is_checked()
    a, b = (phone.locator(f"#portal-answer-{side}").bounding_box() for side in ("a", "b"))
    assert b["y"] > a["y"] + a["height"] and abs(a["x"] - b["x"]) < 1  # stacked, aligned
    seen = [journey.look(phone, "rater1-first.png")]
    judge(phone, "1", done=1)
    seen.append(journey.look(phone))
    tap_verdict(phone, "B 更好（2）", "B")
    phone.locator("#portal-saved").get_by_text("已保存 ✓ 第 2 题的回答").wait_for(timeout=30_000)
    phone.locator("#portal-progress").get_by_text("已评 2 / 4 题").wait_for()
    phone.close()

    phone = context.new_page()  # the same link later: it resumes at item 3
    phone.goto(link)
    phone.locator("#portal-progress").get_by_text("已评 2 / 4 题").wait_for(timeout=60_000)
    third = journey.look(phone, "rater1-resumed.png")
    assert third not in seen
    phone.locator("#portal-back").tap()
    phone.locator("#portal-saved").get_by_text("正在修改第 2 题的回答").wait_for(timeout=30_000)
    assert journey.look(phone, "rater1-back.png") == seen[1]
    assert phone.locator("#portal-choice input[value='B']").is_checked()
    tap_verdict(phone, "一样好（3）", "tie")
    phone.locator("#portal-saved").get_by_text("已保存 ✓ 第 2 题的回答").wait_for(timeout=30_000)
    phone.locator("#portal-progress").get_by_text("已评 2 / 4 题").wait_for()
    assert journey.look(phone) == third
    judge(phone, "1", done=3)  # the keys work right after a tapped button too
    seen += [third, journey.look(phone)]
    tap_verdict(phone, "都不好（4）", "both_bad")
    phone.locator("#portal-notice").get_by_text("谢谢您！所有题目都已评完").wait_for(timeout=30_000)
    phone.locator("#portal-saved").get_by_text("已保存 ✓ 第 4 题的回答").wait_for()
    phone.locator("#portal-progress").get_by_text("已评 4 / 4 题").wait_for()
    journey.look(phone, "rater1-thanks.png")
    assert sorted(seen) == sorted(QUESTIONS) and journey.markdown_seen >= 1
    return seen


def second_rater(journey: Journey, context, link: str) -> None:
    """王律师 on a phone judges two items with the keyboard and leaves."""
    phone = context.new_page()
    phone.goto(link)
    phone.locator("#portal-progress").get_by_text("已评 0 / 4 题").wait_for(timeout=60_000)
    phone.locator("#portal-header").get_by_text("王律师，您好").wait_for()
    journey.look(phone)
    judge(phone, "1", done=1)
    journey.look(phone)
    judge(phone, "3", done=2)
    journey.look(phone, "rater2-left.png")
    context.close()


def test_a_blind_study_from_invitation_to_unblinding(browser, serve, tmp_path):
    journey = Journey(tmp_path)
    url, _app = serve(journey.studio, lang="en", login=Login("organiser", "s3cret"))
    phones = {"is_mobile": True, "has_touch": True, "viewport": PHONE}
    organiser = browser.new_context(viewport=DESKTOP).new_page()
    links = organiser_invites(journey, organiser, url)
    first, second = (browser.new_context(**phones) for _ in range(2))
    for context in (first, second):
        context.add_init_script(RESPONSE_SPY)
    order = first_rater(journey, first, links["李医生"])
    second_rater(journey, second, links["王律师"])

    table = organiser.locator("#study-raters")
    for name, done in (("李医生", "4 / 4"), ("王律师", "2 / 4")):  # the dashboard's timer picks the votes up
        table.locator("[role=row]").filter(has_text=name).filter(has_text=done).filter(visible=True).first.wait_for(
            timeout=10_000)
    organiser.locator("#study-results").get_by_text("Results (organiser, unblinded)").first.click()
    organiser.get_by_role("button", name="Unblind and show results").click()
    organiser.locator("#study-summary").get_by_text("6 votes.").wait_for(timeout=30_000)
    organiser.locator("#study-chart .js-plotly-plot").wait_for(timeout=30_000)  # the outcome chart is drawn
    journey.shoot(organiser, "organiser-results.png")

    rater_id = journey.studio.rater_for_invitation(token_of(links["李医生"])).rater_id
    with sqlite3.connect(tmp_path / "data" / "studies.db") as db:
        changed = db.execute("SELECT v.choice FROM votes v JOIN questions q ON q.id = v.question_id WHERE "
                             "v.rater_id = ? AND q.prompt = ? ORDER BY v.id", (rater_id, order[1])).fetchall()
        counts = db.execute("SELECT r.name, COUNT(*) FROM votes v JOIN raters r ON r.id = v.rater_id "
                            "WHERE v.study_id = ? GROUP BY r.name", (journey.study_id,)).fetchall()
    assert [choice for (choice,) in changed] == ["B", "tie"]  # the change is a new row; the old one is kept
    assert dict(counts) == {"李医生": 5, "王律师": 2}
    assert journey.studio.study(journey.study_id)["votes"] == 6
    assert journey.too_wide == []
