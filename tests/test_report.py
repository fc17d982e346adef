"""The run report: one self-contained HTML page (plotly.js inline once, nothing fetched), every section, escaped
text, in English and Chinese; looked at in headless Chromium."""
from __future__ import annotations

import dataclasses
import re

import pytest

from engine.config import TrainConfig
from engine.export.report import ReportFacts, render_report, what_happened, write_report
from engine.locales import render
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent
from tests.share_fixtures import default_events
from tests.test_card import STUDY

SECTIONS = ("report_data", "report_config", "report_curves", "report_estimate", "report_samples", "report_study")
AGREEMENT = {"cohen": [{"raters": ("ann", "<bob>"), "items": 5, "kappa": 0.42}], "fleiss": 0.31, "fleiss_items": 4}
SAMPLES = [("Where is my order <script>alert(1)</script>?", "I do not know.", "Thanks for reaching out!"),
           ("退货政策是什么？", "不清楚。", "您可以在 30 天内退货。")]


def timed_events() -> list:
    """The default events stamped 95 seconds apart from loading to done (as an EventLog stamps them)."""
    events = default_events()
    return [type(event)(**{**event.__dict__, "time": 1000.0 + 95.0 * (index == len(events) - 1)})
            for index, event in enumerate(events)]


def full_facts(lang: str = "en") -> ReportFacts:
    return ReportFacts(lang=lang, run_id="20260101-120000", config=TrainConfig(dataset_path="/data/orders.jsonl"),
                       events=timed_events(), dataset={"rows": 120, "format": "alpaca", "tokens": 9000,
                                                       "warnings": 3, "truncated_rows": 0},
                       estimate={"memory_gb": 1.5, "seconds": 80}, samples=SAMPLES, study=STUDY,
                       agreement=AGREEMENT)


def scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>", html)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_section_is_there_in_its_language(lang):
    html = render_report(full_facts(lang))
    assert html.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in html
    for code in SECTIONS:
        assert f"<h2>{render(code, lang=lang)}</h2>" in html
    assert render("report_title", {"run_id": "20260101-120000"}, lang) in html
    assert render("diagnosis_healthy", {}, lang).split("{")[0][:6] in html  # the curve's diagnosis, in words
    assert render("report_win_rate", {"rate": "62.5", "low": "45.0", "high": "77.0",
                                      "baseline": render("report_baseline_base", lang=lang)}, lang) in html
    assert "0:01:20" in html and "0:01:35" in html  # predicted 80 s, took 95 s
    assert "1.50 GB" in html and "0.89 GB" in html  # predicted memory, peak memory (910 MB)
    assert render("state_DONE", lang=lang) in html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_study_against_another_run_names_that_run_not_the_base_model(lang):
    facts = full_facts(lang)
    facts.study = dataclasses.replace(STUDY, baseline_run="sft-run", baseline_step=30)
    html = render_report(facts)
    against = render("report_baseline_checkpoint", {"run": "sft-run", "step": 30}, lang)
    assert against in html and "sft-run" in html and "30" in against
    assert render("report_votes", {"votes": 40, "ties": 4, "base_wins": 12, "raters": 3, "items": 12,
                                   "baseline": against}, lang) in html
    assert render("report_baseline_base", lang=lang) not in html.split(render("report_study", lang=lang))[-1]


def test_the_page_is_self_contained_with_plotly_inline_once():
    html = render_report(full_facts())
    assert all("src=" not in tag for tag in scripts(html))
    assert html.count("* plotly.js v") == 1  # the library, once, in the first chart
    library = re.search(r"<script>/\*\*\n\* plotly\.js v.*?</script>", html, re.DOTALL)
    page = html.replace(library.group(0), "")  # what the report itself writes, without plotly.js's own code
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert html.count('class="plotly-graph-div"') == 3  # loss, metrics, study


def test_user_text_is_escaped():
    html = render_report(full_facts())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "pilot &lt;b&gt;one&lt;/b&gt;" in html and "&lt;bob&gt;" in html
    assert "退货政策是什么？" in html


def test_a_bare_run_says_what_is_missing_and_draws_no_study():
    events = [StatusEvent(RunState.LOADING), StatusEvent(RunState.FAILED)]
    html = render_report(ReportFacts(lang="zh", run_id="r", config=TrainConfig(), events=events))
    for code in ("report_no_data", "report_no_curve", "report_no_samples", "report_no_study"):
        assert render(code, lang="zh") in html
    assert "plotly-graph-div" not in html and render("state_FAILED", lang="zh") in html


def test_only_a_study_chart_still_embeds_plotly():
    facts = ReportFacts(lang="en", run_id="r", config=TrainConfig(), events=[], study=STUDY)
    html = render_report(facts)
    assert html.count("* plotly.js v") == 1 and html.count('class="plotly-graph-div"') == 1


def test_what_happened_reads_time_memory_and_state():
    assert what_happened(timed_events()) == {"state": RunState.DONE, "seconds": 95.0, "memory_gb": 0.89}
    assert what_happened([LogEvent(1, loss=1.0)]) == {"state": RunState.IDLE, "seconds": None, "memory_gb": None}


def test_the_report_is_written_whole_into_the_run(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    for event in default_events():
        log.append(event)
    facts = full_facts()
    facts.events = log.since(0)[0]
    path = write_report(tmp_path, facts)
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == render_report(facts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "report.html"]


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_report_opens_offline_in_chromium(browser, tmp_path, lang, shots):
    path = write_report(tmp_path, full_facts(lang))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    fetched = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else (fetched.append(route.request.url), route.abort()))
    page.goto(path.as_uri())
    page.wait_for_selector(".plotly-graph-div .main-svg")
    assert page.locator(".plotly-graph-div .main-svg").count() >= 3  # every chart drawn, offline
    assert fetched == []
    assert page.locator("h2").count() == len(SECTIONS)
    page.screenshot(path=str(shots / f"report_{lang}.png"), full_page=True)
