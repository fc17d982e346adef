"""The newcomer's whole journey in headless Chromium at 1400 px, in 中文, on the real studio (the real worker, the
bundled model): from the first screen to a trained adapter and a side-by-side answer in Chat, every click counted
and only the question typed; then every tab in English. Screenshots of every tab go to the `shots` folder. And the
two frictions the journey showed, fixed: Chat's pickers offer a run trained since the page opened, and the chosen
preset's description follows the language.

The bundled defaults train for several minutes on a small CPU (27 steps), so the journey picks the shipped
`smoke-test` preset (two clicks, counted) to keep the run short."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Locator, expect

import ui
from engine import BASE_CHOICE, RunState
from engine.locales import catalogue
from engine.studio import Studio
from ui import params_tab
from ui.journey import DONE_MARK, TAB_STEPS
from ui.params_tab import ParamsView
from ui.study_sides import choice_name

MAX_CLICKS = 8  # the goal: from the first screen to a side-by-side answer
SHORT_PRESET = "smoke-test"
QUESTION = "下单后多久发货？"
TRAIN_SECONDS = 600
ANSWER_SECONDS = 600  # generous: on a loaded 2-core machine a token can take seconds
PANES = ("#chat-base", "#chat-adapter")  # the baseline's and the candidate's conversations
ENDING_LETTERS = 12  # an answer's last letters, shown: the pane shows it to its end


class Clicks:
    """Clicks on the page, each named and counted (the journey's budget)."""

    def __init__(self) -> None:
        self.named: list[str] = []

    def __call__(self, target: Locator, name: str) -> None:
        """Click `target`, recorded as `name`."""
        target.click()
        self.named.append(name)


def zh(key: str) -> str:
    """The 中文 text of the catalogue's `ui.` key."""
    return catalogue().texts["zh"][f"ui.{key}"]


def record_answers(studio: Studio) -> dict:
    """Keep, in the returned dict's "answers", the last pair the studio's side-by-side stream yielded, once the
    stream has ended (the real stream, only watched)."""
    ended: dict = {}
    stream = studio.stream_compare

    def recorded(*args, **kwargs):
        """The studio's stream, remembering its last pair when it ends."""
        last = None
        for last in stream(*args, **kwargs):
            yield last
        ended["answers"] = last

    studio.stream_compare = recorded
    return ended


def letters(text: str) -> str:
    """The letters and digits of `text` (what survives the panes' Markdown rendering)."""
    return "".join(ch for ch in text if ch.isalnum())


def shown_answers(page, ended: dict) -> list[str]:
    """Both panes' latest answers as shown, once the stream has ended and each pane shows its answer to the end."""
    deadline = time.monotonic() + ANSWER_SECONDS
    while "answers" not in ended and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert "answers" in ended, "the side-by-side stream did not end"
    for pane, answer in zip(PANES, ended["answers"]):
        ending = letters(answer)[-ENDING_LETTERS:]
        page.wait_for_function("([pane, ending]) => [...document.querySelectorAll(`${pane} [data-testid='bot']`)]"
                               ".some(m => [...m.innerText].filter(c => /[\\p{L}\\p{N}]/u.test(c)).join('')"
                               ".endsWith(ending))", arg=[pane, ending], timeout=30_000)
    return [page.locator(f"{pane} [data-testid='bot']").last.inner_text() for pane in PANES]


def screenshot_every_tab(page, shots, lang: str) -> None:
    """Open each tab in turn (clicks outside the journey) and save a full-page screenshot of it."""
    texts = catalogue().texts[lang]
    for tab_id, key, _mark in TAB_STEPS:
        page.get_by_role("tab", name=re.compile(re.escape(texts[f"ui.{key}"]))).click()
        page.locator(f"#{tab_id}").wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / f"journey-{lang}-{tab_id}.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.browser
def test_a_newcomer_trains_and_compares_in_at_most_eight_clicks(serve, browser, shots, tmp_path):
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    ended = record_answers(studio)
    url, _app = serve(studio, "zh")
    page, click = browser.new_page(viewport={"width": 1400, "height": 1000}), Clicks()
    page.goto(url)
    page.locator("#dataset-summary").get_by_text("可以开始训练").wait_for(timeout=90_000)  # checked on opening
    page.get_by_role("tab", name=zh("tab_dataset") + DONE_MARK).wait_for()
    page.screenshot(path=str(shots / "journey-zh-1-first-screen.png"), full_page=True)

    click(page.locator("#next-params"), zh("next_to_params"))
    click(page.locator("#preset input").first, "preset picker")
    click(page.get_by_role("option", name=SHORT_PRESET), SHORT_PRESET)
    expect(page.locator("#preset-about")).to_contain_text("冒烟测试", timeout=30_000)
    page.screenshot(path=str(shots / "journey-zh-2-params.png"), full_page=True)
    click(page.locator("#next-training"), zh("next_to_training"))
    expect(page.locator("#run-summary")).to_contain_text("2 步", timeout=60_000)  # the preset's run, before Start
    page.screenshot(path=str(shots / "journey-zh-3-training-before.png"), full_page=True)
    click(page.locator("#start"), zh("start"))

    started = time.monotonic()
    while studio.current_run_id() is None and time.monotonic() - started < 60:  # the click reaches the server
        page.wait_for_timeout(250)
    assert studio.runner.wait(TRAIN_SECONDS) is RunState.DONE
    trained_seconds = time.monotonic() - started
    run = studio.list_runs()[0]
    assert run.state is RunState.DONE and run.has_adapter
    assert (studio.run_dir(run.run_id) / "adapter" / "adapter_model.safetensors").is_file()
    page.get_by_role("tab", name=zh("tab_training") + DONE_MARK).wait_for(timeout=60_000)
    expect(page.locator("#run-status")).to_contain_text("已完成", timeout=30_000)
    page.screenshot(path=str(shots / "journey-zh-3-training-done.png"), full_page=True)

    click(page.locator("#next-chat"), zh("next_to_chat"))
    expect(page.locator("#chat-run input").first).to_have_value(run.run_id, timeout=30_000)  # the new run, picked
    click(page.locator("#chat-prompt textarea"), "question box")
    page.keyboard.type(QUESTION)  # the only text typed
    click(page.locator("#chat-ask"), zh("ask"))
    base, adapter = shown_answers(page, ended)
    expect(page.locator("#chat-base")).to_contain_text(choice_name(studio, BASE_CHOICE, "zh"))
    expect(page.locator("#chat-adapter")).to_contain_text(choice_name(studio, run.run_id, "zh"))
    page.screenshot(path=str(shots / "journey-zh-4-chat.png"), full_page=True)
    print(f"journey: {len(click.named)} clicks: {click.named}; trained in {trained_seconds:.0f} s; "
          f"base: {base[:80]!r}; adapter: {adapter[:80]!r}")
    assert len(click.named) <= MAX_CLICKS, click.named
    assert base.strip() and adapter.strip()

    screenshot_every_tab(page, shots, "zh")
    page.locator("#language").get_by_text("English").click()
    page.get_by_role("tab", name=catalogue().texts["en"]["ui.tab_training"] + DONE_MARK).wait_for(timeout=60_000)
    screenshot_every_tab(page, shots, "en")
    page.get_by_role("tab", name=re.compile(re.escape(catalogue().texts["en"]["ui.tab_chat"]))).click()
    expect(page.locator("#chat-base")).to_contain_text(choice_name(studio, BASE_CHOICE, "en"), timeout=30_000)
    expect(page.locator("#chat-adapter")).to_contain_text(choice_name(studio, run.run_id, "en"))


def test_the_chosen_presets_description_follows_the_language(tmp_path):
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    view = ParamsView(preset="preset", about="about", fields={}, trainable=None, plan=None, as_yaml=None,
                      as_script=None)
    assert params_tab.describe_preset(studio, view, "zh", SHORT_PRESET)["about"].startswith("快速冒烟测试")
    assert params_tab.describe_preset(studio, view, "en", SHORT_PRESET)["about"].startswith("Quick smoke test")
    assert params_tab.describe_preset(studio, view, "en", "") == {"about": ""}


def triggers_of(app, output_elem_id: str) -> list[set[tuple[str, str]]]:
    """For each event filling the component `output_elem_id`: its triggers, as (the elem id of the component that
    fires it, the event's name)."""
    elem_ids = {component["id"]: component["props"].get("elem_id") for component in app.config["components"]}
    wanted = next(id_ for id_, elem_id in elem_ids.items() if elem_id == output_elem_id)
    return [{(elem_ids.get(target), event) for target, event in dependency["targets"]}
            for dependency in app.config["dependencies"] if wanted in dependency["outputs"]]


def test_chat_pickers_and_the_preset_description_are_refreshed_when_the_journey_comes_to_them(tmp_path):
    app = ui.build_app(Studio(tmp_path / "runs", data_root=tmp_path / "data"))
    assert any(("tabs", "change") in triggers for triggers in triggers_of(app, "chat-run"))  # a run trained since
    assert any(("tabs", "change") in triggers for triggers in triggers_of(app, "chat-baseline"))
    assert any(("language", "change") in triggers for triggers in triggers_of(app, "preset-about"))
