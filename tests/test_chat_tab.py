"""Chat compare through the UI layer with a fake chat model: settings and both conversations reach it; and the
tab's handlers called directly with a fake studio: the two sides' pickers and headings in both languages, the
baseline reaching the studio, the same model on both sides refused in words."""
from __future__ import annotations

import gradio as gr
import pytest
from gradio_client import Client

from engine import BASE_CHOICE
from engine.errors import EngineError
from engine.locales import render_error
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from engine.training.adapters import AdapterChoice
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
    """Streams two growing answers, or refuses like a studio whose model is busy training; offers one run's final
    adapter and its checkpoint at step 27."""

    def __init__(self, busy: bool = False) -> None:
        self.busy, self.asked = busy, []

    def adapter_choices(self):
        return [AdapterChoice("r1", "r1"), AdapterChoice("r1@checkpoint-27", "r1", 27)]

    def stream_compare(self, run_id, prompt, params, history, baseline=BASE_CHOICE):
        if self.busy:
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        self.asked.append((run_id, prompt, params, history, baseline))
        yield "Hel", ""
        yield "Hello", "Hi there"


VIEW = ChatView(baseline="baseline", run="run", base_answer="base_answer", adapter_answer="adapter_answer",
                base_chat="base_chat", adapter_chat="adapter_chat", prompt="prompt")


def test_ask_both_streams_answers_keyed_by_the_view():
    studio = FakeStudio()
    earlier = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, {"role": "assistant", "content": "Yo"}]
    steps = list(chat_tab.ask_both(studio, VIEW, "en", "r1", "  Where?  ", earlier, [], 32))
    assert [step["base_answer"] for step in steps] == ["Hel", "Hello"] and steps[-1]["adapter_answer"] == "Hi there"
    last = steps[-1]
    assert last["base_chat"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                                 {"role": "user", "content": "Where?"}, {"role": "assistant", "content": "Hello"}]
    assert last["adapter_chat"][-1] == {"role": "assistant", "content": "Hi there"} and last["prompt"] == ""
    run_id, prompt, params, history, baseline = studio.asked[0]
    assert (run_id, prompt, params.max_new_tokens) == ("r1", "Where?", 32) and history[1] == []
    assert baseline == BASE_CHOICE  # the base model unless another baseline is picked


def test_ask_both_compares_a_checkpoint_with_the_final_adapter():
    studio = FakeStudio()
    steps = list(chat_tab.ask_both(studio, VIEW, "en", "r1", "Where?", [], [], baseline="r1@checkpoint-27"))
    assert steps[-1]["base_answer"] == "Hello" and steps[-1]["adapter_answer"] == "Hi there"
    assert [(run_id, baseline) for run_id, _p, _s, _h, baseline in studio.asked] == [("r1", "r1@checkpoint-27")]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_same_model_on_both_sides_is_refused_in_words(lang):
    studio = FakeStudio()
    with pytest.raises(gr.Error) as same:
        list(chat_tab.ask_both(studio, VIEW, lang, "r1@checkpoint-27", "Hi", [], [], baseline="r1@checkpoint-27"))
    assert same.value.message == t("sides_same", lang, side=t("side_run_step", lang, run="r1", step=27))
    assert studio.asked == []


def test_the_pickers_offer_the_base_model_on_the_left_only_and_read_in_chinese():
    shown = chat_tab.refresh_runs(FakeStudio(), VIEW, "zh")
    adapters = [("r1", "r1"), ("r1 · 第 27 步的检查点", "r1@checkpoint-27")]
    assert shown["baseline"].choices == [("基础模型", BASE_CHOICE), *adapters]
    assert shown["baseline"].value == BASE_CHOICE
    assert shown["run"].choices == adapters
    assert shown["run"].value == "r1"
    english = chat_tab.refresh_runs(FakeStudio(), VIEW, "en", "r1@checkpoint-27", "r1@checkpoint-27")
    assert (english["baseline"].value, english["run"].value) == ("r1@checkpoint-27", "r1@checkpoint-27")  # kept
    assert english["run"].choices[1] == ("r1 · checkpoint at step 27", "r1@checkpoint-27")
    gone = chat_tab.refresh_runs(FakeStudio(), VIEW, "en", "old@checkpoint-3", "old")
    assert (gone["baseline"].value, gone["run"].value) == (BASE_CHOICE, "r1")  # a deleted run falls back


def test_the_panes_are_headed_by_their_sides_in_the_page_language():
    english = chat_tab.show_sides(FakeStudio(), VIEW, "en", BASE_CHOICE, "r1@checkpoint-27")
    assert english["base_chat"]["label"] == "Base model"
    assert english["adapter_chat"]["label"] == "run r1 · step 27"
    chinese = chat_tab.show_sides(FakeStudio(), VIEW, "zh", "r1", "r1@checkpoint-27")
    assert chinese["base_chat"]["label"] == "训练 r1" and chinese["adapter_chat"]["label"] == "训练 r1 · 第 27 步"
    unknown = chat_tab.show_sides(FakeStudio(), VIEW, "zh", None, None)
    assert unknown["base_chat"]["label"] == "基础模型" and unknown["adapter_chat"]["label"] == t("side_adapter", "zh")


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
