"""Chat compare through the UI layer with a fake chat model: settings and both conversations reach it; and the
tab's handlers called directly with a fake studio."""
from __future__ import annotations

import gradio as gr
import pytest
from gradio_client import Client

from engine.errors import EngineError
from engine.locales import render_error
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from tests.conftest import FakeJob
from ui import chat_tab
from ui.chat_tab import ChatView
from ui.i18n import t


class RecordingChat:
    def __init__(self) -> None:
        self.calls = []

    def stream_compare(self, run_dir, messages, params, adapter_messages=None):
        self.calls.append((messages, adapter_messages, params))
        base, adapter = f"base {len(messages)}", f"adapter {len(adapter_messages)}"
        yield base[:2], ""
        yield base, adapter[:3]
        yield base, adapter


def test_multi_turn_with_shared_settings(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob)
    studio.chat = RecordingChat()
    run_id = studio.start(studio.default_config().replace(dataset_path=str(SAMPLE_DATASET)))
    studio.runner.wait(30)
    url, _app = serve(studio)
    client = Client(url, verbose=False)
    _b, _a, base_chat, adapter_chat, prompt = client.predict(
        "en", run_id, "Hi", [], [], 64, 0.7, 0.9, 1.2, 5, "Be brief.", api_name="/ask")
    assert prompt == ""
    client.predict("en", run_id, "Again", base_chat, adapter_chat, 64, 0.7, 0.9, 1.2, 5, "Be brief.", api_name="/ask")
    (first_base, first_adapter, params), (second_base, second_adapter, _) = studio.chat.calls
    assert first_base == first_adapter == [{"role": "user", "content": "Hi"}]
    assert second_base[1] == {"role": "assistant", "content": "base 1"}  # each side keeps its own answers
    assert second_adapter[1] == {"role": "assistant", "content": "adapter 1"}
    assert (params.max_new_tokens, params.temperature, params.top_p, params.repetition_penalty, params.seed,
            params.system_prompt) == (64, 0.7, 0.9, 1.2, 5, "Be brief.")


# the handlers called directly, with a fake studio ---------------------------------------------------
class FakeStudio:
    """Streams two growing answers, or refuses like a studio whose model is busy training."""

    def __init__(self, busy: bool = False) -> None:
        self.busy, self.asked = busy, []

    def stream_compare(self, run_id, prompt, params, history):
        if self.busy:
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        self.asked.append((run_id, prompt, params, history))
        yield "Hel", ""
        yield "Hello", "Hi there"


VIEW = ChatView(run="run", base_answer="base_answer", adapter_answer="adapter_answer", base_chat="base_chat",
                adapter_chat="adapter_chat", prompt="prompt")


def test_ask_both_streams_answers_keyed_by_the_view():
    studio = FakeStudio()
    earlier = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, {"role": "assistant", "content": "Yo"}]
    steps = list(chat_tab.ask_both(studio, VIEW, "en", "r1", "  Where?  ", earlier, [], 32))
    assert [step["base_answer"] for step in steps] == ["Hel", "Hello"] and steps[-1]["adapter_answer"] == "Hi there"
    last = steps[-1]
    assert last["base_chat"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                                 {"role": "user", "content": "Where?"}, {"role": "assistant", "content": "Hello"}]
    assert last["adapter_chat"][-1] == {"role": "assistant", "content": "Hi there"} and last["prompt"] == ""
    run_id, prompt, params, history = studio.asked[0]
    assert (run_id, prompt, params.max_new_tokens) == ("r1", "Where?", 32) and history[1] == []


def test_ask_both_refuses_in_words():
    with pytest.raises(gr.Error) as no_run:
        list(chat_tab.ask_both(FakeStudio(), VIEW, "zh", None, "Hi", [], []))
    assert no_run.value.message == t("no_runs", "zh")
    with pytest.raises(gr.Error) as empty:
        list(chat_tab.ask_both(FakeStudio(), VIEW, "en", "r1", "   ", [], []))
    assert empty.value.message == t("empty_prompt", "en")
    with pytest.raises(gr.Error) as busy:
        list(chat_tab.ask_both(FakeStudio(busy=True), VIEW, "zh", "r1", "Hi", [], []))
    assert busy.value.message == render_error(EngineError("busy_generating", hint="hint_wait_or_stop"), "zh")


def test_clear_empties_both_conversations():
    assert chat_tab.clear_conversations(FakeStudio(), VIEW) == {"base_chat": [], "adapter_chat": []}
