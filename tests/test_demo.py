"""The demo page (`python app.py demo --run DIR`): its serving rules and handlers (fast, a scripted studio), and a
presenter's journey in headless Chromium on a really trained run, in English and 中文 (slow)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from gradio.utils import get_upload_folder

from engine.chat.inference import ChatModel, GenParams
from engine.config import TrainConfig
from engine.errors import EngineError
from tests.conftest import free_port
from ui import demo
from ui.server import PORTAL_BODY_LIMIT, UPLOAD_CLEANUP, ServerThread


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


PARAMS = GenParams(max_new_tokens=24)  # the presenter's answer length, bound to the page's handler


class ScriptedStudio:
    """Stands in for Studio: the adapter answers "Hi there", the base "HI THERE", growing word by word."""

    def __init__(self) -> None:
        self.asked = []

    def stream_answer(self, choice, messages, params, side):
        self.asked.append((choice, messages, side))
        self.params = params
        yield from ("Hi", "Hi there")

    def stream_compare(self, choice, prompt, params, history):
        self.asked.append((choice, prompt, history))
        self.params = params
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
    steps = list(demo.ask(studio, alone, "run-3", PARAMS, "en", " Hello ", None, [{"role": "user", "content": "Before"},
                                                                           {"role": "assistant", "content": "Ok"}]))
    assert steps[-1]["adapter"][-2:] == [{"role": "user", "content": "Hello"},
                                         {"role": "assistant", "content": "Hi there"}]
    assert steps[-1]["prompt"] == "" and "base" not in steps[-1]
    assert studio.asked[-1] == ("run-3", steps[-1]["adapter"][:-1], "adapter") and studio.params is PARAMS
    both = demo.DemoView("base", "adapter", "prompt")
    final = list(demo.ask(studio, both, "run-3", PARAMS, "en", "Hello", [], []))[-1]
    assert final["base"][-1]["content"] == "HI THERE" and final["adapter"][-1]["content"] == "Hi there"
    assert studio.params is PARAMS
    assert demo.clear(both) == {"base": [], "adapter": []} and demo.clear(alone) == {"adapter": []}
    with pytest.raises(gr.Error, match="请先输入问题"):
        list(demo.ask(studio, alone, "run-3", PARAMS, "zh", "  ", None, None))


def exchanges(count: int) -> list[dict]:
    return [turn for n in range(count) for turn in ({"role": "user", "content": f"Q{n}"},
                                                     {"role": "assistant", "content": f"A{n}"})]


def test_the_model_reads_the_last_exchanges_only():
    studio = ScriptedStudio()
    alone, both = demo.DemoView(None, "adapter", "prompt"), demo.DemoView("base", "adapter", "prompt")
    list(demo.ask(studio, alone, "run-3", PARAMS, "en", "Next", None, exchanges(40)))
    sent = studio.asked[-1][1]
    assert len(sent) == 2 * demo.HISTORY_TURNS - 1 and sent[0]["content"] == f"Q{41 - demo.HISTORY_TURNS}"
    assert sent[-1]["content"] == "Next"
    list(demo.ask(studio, both, "run-3", PARAMS, "en", "Next", exchanges(40), exchanges(40)))
    base, adapter = studio.asked[-1][2]
    assert len(base) == len(adapter) == 2 * (demo.HISTORY_TURNS - 1)
    list(demo.ask(studio, alone, "run-3", PARAMS, "en", "Next", None, exchanges(3)))
    assert studio.asked[-1][1][:6] == exchanges(3)  # a short conversation is kept whole


def test_the_studios_answer_stream_is_refused_while_a_run_trains(fake_run):
    studio, choice = demo.open_run(fake_run)
    streamed = []
    studio.chat = SimpleNamespace(stream_answer=lambda *args: streamed.append(args) or iter(["Hi"]))
    assert list(studio.stream_answer(choice, [{"role": "user", "content": "Hi"}])) == ["Hi"]
    assert streamed[-1][0] == fake_run and streamed[-1][3] == "adapter"
    studio.runner.is_live = lambda run_id=None: True
    studio.runner.snapshot = lambda run_id=None: SimpleNamespace(state=SimpleNamespace(is_live=True))
    with pytest.raises(EngineError) as busy:
        list(studio.stream_answer(choice, [{"role": "user", "content": "Hi"}], GenParams(), "base"))
    assert busy.value.code == "busy_generating" and len(streamed) == 1


def test_the_page_takes_no_files_and_no_large_requests_over_http(fake_run):
    studio, choice = demo.open_run(fake_run)
    page = demo.build_demo(studio, choice)
    port = free_port()
    server = ServerThread(demo.demo_server(page, "127.0.0.1", [], None), port).start()
    url = f"http://127.0.0.1:{port}"
    kept = Path(get_upload_folder()) / "demo-test" / "secret.txt"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text("someone else's upload", encoding="utf-8")
    try:
        assert httpx.get(f"{url}/").status_code == 200
        for route in ("upload", "process_recording"):
            sent = httpx.post(f"{url}/gradio_api/{route}", files={"files": ("a.txt", b"x")})
            assert sent.status_code == 404
        large = httpx.post(f"{url}/gradio_api/queue/join", content=b"x" * (PORTAL_BODY_LIMIT + 1))
        assert large.status_code == 413 and "256" in large.text
        served = httpx.get(f"{url}/gradio_api/file={kept}")
        assert served.status_code in (403, 404) and "someone else" not in served.text
        assert httpx.get(f"{url}/", headers={"Host": "evil.example"}).status_code == 400
    finally:
        server.stop()
        kept.unlink()
    assert page.delete_cache == UPLOAD_CLEANUP


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
    for wrong in ("0", "2000", "many"):
        with pytest.raises(SystemExit):
            demo.main(["--run", str(fake_run), "--max-new-tokens", wrong], lang="zh")
        assert f"{wrong} 不是有效的回答长度" in capsys.readouterr().err


def test_the_presenters_answer_length_reaches_the_model():
    assert demo.demo_parser("en").parse_args(["--run", "r", "--max-new-tokens", "48"]).max_new_tokens == 48
    assert demo.demo_parser("en").parse_args(["--run", "r"]).max_new_tokens == GenParams.max_new_tokens
    studio = ScriptedStudio()
    page = demo.build_demo(studio, "run-3", max_new_tokens=48)
    ask = next(fn.fn for fn in page.fns.values() if fn.api_name == "ask")
    assert list(ask("en", "Hello", [], []))  # the adapter alone answers
    assert studio.params == GenParams(max_new_tokens=48)


@pytest.mark.slow
@pytest.mark.browser
def test_a_presenter_shows_the_trained_adapter_in_english_and_chinese(run_copy, page, shots):
    studio, choice = demo.open_run(run_copy)
    short = GenParams(max_new_tokens=32)  # quick on a small CPU; the page answers as long as the presenter says
    blocks = demo.build_demo(studio, choice, title="Orchard Lane helpdesk", side_by_side=True, lang="en",
                             description="A small model fine-tuned on customer-service answers.",
                             max_new_tokens=short.max_new_tokens)
    port = free_port()
    server = ServerThread(demo.demo_server(blocks, "127.0.0.1", [], None), port).start()
    question = "Where is my order? It has been five days."
    expected = ChatModel().compare(run_copy, [{"role": "user", "content": question}], short)
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("Orchard Lane helpdesk").wait_for(timeout=60_000)
        page.get_by_text(question).click()  # the example fills the question
        page.wait_for_function(f"document.querySelector('#demo-prompt textarea').value === {question!r}",
                               timeout=30_000)
        page.get_by_role("button", name="Ask").click()
        page.locator("#demo-adapter").get_by_text(expected.adapter[:30]).wait_for(timeout=120_000)
        page.locator("#demo-base").get_by_text(expected.base[:30]).wait_for(timeout=60_000)
        for chat, answer in (("#demo-adapter", expected.adapter), ("#demo-base", expected.base)):
            ending = " ".join(answer.split()[-3:])  # the answer written to its end: the one slot is free again
            page.wait_for_function("([chat, ending]) => [...document.querySelectorAll(`${chat} .message`)].some("
                                   "m => m.innerText.replace(/\\s+/g, ' ').includes(ending))", arg=[chat, ending],
                                   timeout=240_000)
        page.screenshot(path=str(shots / "demo_en.png"), full_page=True)
        page.get_by_label("中文").check()
        page.get_by_role("button", name="提问").wait_for()
        page.locator("#demo-prompt textarea").fill("退货怎么办？")
        page.get_by_role("button", name="提问").click()
        page.locator("#demo-adapter").get_by_text("退货怎么办？").wait_for(timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#demo-adapter .message').length >= 4", timeout=120_000)
        page.get_by_role("button", name="重新开始").wait_for()
        page.screenshot(path=str(shots / "demo_zh.png"), full_page=True)
    finally:
        server.stop()
