"""The demo page (`python app.py demo --run DIR`): its serving rules and handlers (fast, a scripted studio), and a
presenter's journey in headless Chromium on a really trained run, in English and 中文 (slow)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from engine.chat.inference import ChatModel, GenParams
from engine.config import TrainConfig
from engine.errors import EngineError
from tests.conftest import free_port
from ui import demo
from ui.server import ServerThread

SHOTS = Path(os.environ.get("DEMO_SHOTS", "/tmp/work/w13/c_shots"))


@pytest.fixture
def fake_run(tmp_path):
    """A run folder with a config, a final adapter and a complete checkpoint (never loaded here)."""
    run = tmp_path / "runs" / "run-3"
    for folder in (run / "adapter", run / "checkpoints" / "checkpoint-2"):
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}", encoding="utf-8")
    (run / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    return run


class ScriptedStudio:
    """Stands in for Studio: the adapter answers "Hi there", the base "HI THERE", growing word by word."""

    def __init__(self) -> None:
        self.chat = SimpleNamespace(stream_answer=self.stream_answer)
        self.asked = []

    def adapter_path(self, choice):
        return Path("/runs") / choice

    def stream_answer(self, folder, messages, params, side):
        self.asked.append((folder, messages, side))
        yield from ("Hi", "Hi there")

    def stream_compare(self, choice, prompt, params, history):
        self.asked.append((choice, prompt, history))
        yield from (("HI", ""), ("HI THERE", ""), ("HI THERE", "Hi"), ("HI THERE", "Hi there"))


def test_a_run_or_a_checkpoint_opens_as_its_adapter_choice(fake_run):
    assert demo.open_run(fake_run)[1] == "run-3"
    studio, choice = demo.open_run(fake_run / "checkpoints" / "checkpoint-2")
    assert choice == "run-3@checkpoint-2" and studio.run_dir("run-3") == fake_run
    with pytest.raises(EngineError) as missing:
        demo.open_run(fake_run.parent / "run-4")
    assert missing.value.code == "run_not_found"


def test_the_adapter_answer_streams_alone_or_beside_the_base():
    studio = ScriptedStudio()
    alone = demo.DemoView(None, "adapter", "prompt")
    steps = list(demo.ask(studio, alone, "run-3", "en", " Hello ", None, [{"role": "user", "content": "Before"},
                                                                           {"role": "assistant", "content": "Ok"}]))
    assert steps[-1]["adapter"][-2:] == [{"role": "user", "content": "Hello"},
                                         {"role": "assistant", "content": "Hi there"}]
    assert steps[-1]["prompt"] == "" and "base" not in steps[-1]
    assert studio.asked[-1] == (Path("/runs/run-3"), steps[-1]["adapter"][:-1], "adapter")
    both = demo.DemoView("base", "adapter", "prompt")
    final = list(demo.ask(studio, both, "run-3", "en", "Hello", [], []))[-1]
    assert final["base"][-1]["content"] == "HI THERE" and final["adapter"][-1]["content"] == "Hi there"
    assert demo.clear(both) == {"base": [], "adapter": []} and demo.clear(alone) == {"adapter": []}
    with pytest.raises(gr.Error, match="请先输入问题"):
        list(demo.ask(studio, alone, "run-3", "zh", "  ", None, None))


def test_the_page_has_the_presenters_words_or_the_catalogues(fake_run):
    studio, choice = demo.open_run(fake_run)
    own = demo.build_demo(studio, choice, title="Orchard Lane helpdesk", description="Ask about orders.",
                          examples=["Where is my parcel?"], side_by_side=True, lang="en")
    config = own.get_config_file()
    values = [c.get("props", {}).get("value") for c in config["components"]]
    assert "# Orchard Lane helpdesk" in values and "Ask about orders." in values
    assert sum(c.get("props", {}).get("label") in ("Base model", "Fine-tuned model") for c in config["components"]) == 2
    samples = [c["props"]["samples"] for c in config["components"] if c["type"] == "dataset"]
    assert samples == [[["Where is my parcel?"]]]
    zh = demo.build_demo(studio, choice, lang="zh").get_config_file()
    assert "# 认识微调后的助手" in [c.get("props", {}).get("value") for c in zh["components"]]
    assert not any(c.get("props", {}).get("label") == "基础模型" for c in zh["components"])  # the adapter alone


def test_exposing_the_page_needs_a_login_and_a_missing_run_is_worded(fake_run, capsys, monkeypatch):
    monkeypatch.delenv("STUDIO_AUTH", raising=False)
    with pytest.raises(SystemExit) as refused:
        demo.main(["--run", str(fake_run), "--host", "0.0.0.0"])
    assert refused.value.code == 2 and "0.0.0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main(["--run", str(fake_run), "--auth", "presenter"])  # no password
    assert "--auth" in capsys.readouterr().err
    assert demo.main(["--run", str(fake_run.parent / "run-4"), "--port", str(free_port())]) == 1
    assert "run-4" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.browser
def test_a_presenter_shows_the_trained_adapter_in_english_and_chinese(run_copy, page):
    studio, choice = demo.open_run(run_copy)
    blocks = demo.build_demo(studio, choice, title="Orchard Lane helpdesk", side_by_side=True, lang="en",
                             description="A small model fine-tuned on customer-service answers.")
    port = free_port()
    server = ServerThread(demo.demo_server(blocks, "127.0.0.1", [], None), port).start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    question = "Where is my order? It has been five days."
    expected = ChatModel().compare(run_copy, [{"role": "user", "content": question}], GenParams())
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("Orchard Lane helpdesk").wait_for(timeout=60_000)
        page.get_by_text(question).click()  # the example fills the question
        page.wait_for_function(f"document.querySelector('#demo-prompt textarea').value === {question!r}",
                               timeout=30_000)
        page.get_by_role("button", name="Ask").click()
        page.locator("#demo-adapter").get_by_text(expected.adapter[:30]).wait_for(timeout=120_000)
        page.locator("#demo-base").get_by_text(expected.base[:30]).wait_for(timeout=60_000)
        page.screenshot(path=str(SHOTS / "demo_en.png"), full_page=True)
        page.get_by_label("中文").check()
        page.get_by_role("button", name="提问").wait_for()
        page.locator("#demo-prompt textarea").fill("退货怎么办？")
        page.get_by_role("button", name="提问").click()
        page.locator("#demo-adapter").get_by_text("退货怎么办？").wait_for(timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#demo-adapter .message').length >= 4", timeout=120_000)
        page.get_by_role("button", name="重新开始").wait_for()
        page.screenshot(path=str(SHOTS / "demo_zh.png"), full_page=True)
    finally:
        server.stop()
    if os.environ.get("STUDIO_SCREENSHOTS"):
        shutil.copy(SHOTS / "demo_zh.png", os.environ["STUDIO_SCREENSHOTS"])
