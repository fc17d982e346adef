"""Chat compare through the UI layer with a fake chat model: settings and both conversations reach it."""
from __future__ import annotations

from gradio_client import Client

from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from tests.conftest import FakeJob


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
