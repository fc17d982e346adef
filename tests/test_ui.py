"""The UI through gradio_client: dataset check, presets, start/poll/stop, language switch, chat."""
from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client

from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from tests.conftest import EN_GREETING, FakeJob


def poll_until_final(client: Client, timeout: float) -> str:
    deadline = time.time() + timeout
    status = ""
    while time.time() < deadline:
        shown, _progress, _diagnosis, _plot, _metrics, _timer, _runs = client.predict("en", api_name="/poll")
        status = shown if isinstance(shown, str) and shown else status  # a tick without news sends no status
        if any(word in status for word in ("**Done**", "**Stopped", "**Failed**")):
            return status
        time.sleep(0.5)
    raise AssertionError(f"run did not finish in {timeout}s; last status: {status}")


def plotted_steps(plot: dict) -> list[int]:
    """The x values of the training-loss trace in a gr.Plot value."""
    figure = json.loads(plot["plot"])
    return list(figure["data"][0]["x"])


def test_dataset_check_reports_problems_in_both_languages(serve, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "Where is my order?", "output": ""}\n{"instruction": "Hi", "output": "Hello"}\n',
                   encoding="utf-8")
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    client = Client(url, verbose=False)
    summary, _histogram, problems, *_rest = client.predict("en", str(bad), api_name="/check_dataset")
    assert "1 errors" in summary and "left out" in summary
    assert problems["data"][0][1] == 1 and problems["data"][0][2] == "output"
    summary_zh, _histogram, problems_zh, *_rest = client.predict("zh", str(bad), api_name="/check_dataset")
    assert "错误" in summary_zh and "第 1 行" in problems_zh["data"][0][3]


def test_preset_fills_the_form(serve, tmp_path):
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    client = Client(url, verbose=False)
    about, *values = client.predict("en", "smoke-test", api_name="/apply_preset")
    assert "smoke test" in about.lower()
    assert 2 in values and 128 in values  # max_steps and max_length of the smoke-test preset


def test_start_poll_and_busy_with_fake_job(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=lambda *a: FakeJob(*a, steps=40, delay=0.1))
    url, _app = serve(studio)
    client = Client(url, verbose=False)
    client.predict(dataset_path=str(SAMPLE_DATASET), api_name="/start_training")
    with pytest.raises(Exception, match="already in progress"):
        Client(url, verbose=False).predict(dataset_path=str(SAMPLE_DATASET), api_name="/start_training")
    client.predict("en", api_name="/stop_training")
    status = poll_until_final(client, timeout=30)
    assert "Stopped" in status
    # a reload (a new session) rebuilds the whole curve from cursor 0
    reloaded = Client(url, verbose=False)
    status2, _progress, _diagnosis, plot, _metrics, _timer = reloaded.predict("en", api_name="/attach")
    logged = [e.step for e in studio.events_since(None, 0)[0] if e.kind == "log"]
    assert logged and plotted_steps(plot) == logged
    assert studio.runner.current_run_id in status2


def test_bad_settings_are_refused_with_the_field_named(serve, tmp_path):
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="learning_rate = 0.5 is outside"):
        client.predict(dataset_path=str(SAMPLE_DATASET), learning_rate=0.5, api_name="/start_training")
    with pytest.raises(Exception, match="不存在"):
        client.predict(lang="zh", dataset_path=str(tmp_path / "missing.jsonl"), api_name="/start_training")


def test_language_switch_relabels_every_registered_component(serve, tmp_path):
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob), lang="en")
    client = Client(url, verbose=False)
    chinese = client.predict("zh", api_name="/set_language")
    english = client.predict("en", api_name="/set_language")
    assert len(chinese) == len(english) > 40  # every tab's labels, help texts and buttons
    same = set()

    def words(update: dict) -> dict:
        """An update's texts; choices count as the text of their labels (gradio's own markers left out: `__type__`,
        and the empty `props` update an HTML component adds)."""
        return {k: " / ".join(str(label) for label, _value in v) if k == "choices" else v
                for k, v in update.items() if k != "__type__" and v != {"__type__": "update"}}

    for zh, en in zip(chinese, english):
        texts, english_texts = words(zh), words(en)
        assert texts and all(isinstance(v, str) and v for v in texts.values())
        same |= {v for k, v in texts.items() if english_texts[k] == v}
    assert same <= {"LoRA", "LoRA alpha", "LoRA dropout", "DoRA", "Top-p", "vLLM", "◀", "▶"}  # technical terms, arrows
    assert any(u.get("label") == "数据集文件路径" for u in chinese)


def test_the_raters_choices_are_reworded_in_their_portal(tmp_path, monkeypatch):
    """The rater's A / B / tie / both bad left the studio for the portal, whose switch rewords them."""
    import ui.portal
    from ui.i18n import Texts

    made = []

    class RecordingTexts(Texts):
        def __init__(self, lang: str) -> None:
            super().__init__(lang)
            made.append(self)

    monkeypatch.setattr(ui.portal, "Texts", RecordingTexts)
    ui.portal.build_portal(Studio(tmp_path / "runs", job_factory=FakeJob), lang="en")
    rating = next(u["choices"] for u in made[-1].updates("zh") if "choices" in u)
    assert [value for _label, value in rating] == ["A", "B", "tie", "both_bad"]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for label, _value in rating)


@pytest.mark.slow
def test_real_short_run_and_both_answers(serve, tmp_path, english_dataset):
    """Start a short real run through the UI's API, follow it to DONE, then ask base and adapter."""
    studio = Studio(tmp_path / "runs")
    url, _app = serve(studio)
    client = Client(url, verbose=False)
    client.predict(dataset_path=str(english_dataset), max_steps=2, per_device_train_batch_size=2, max_length=128,
                   eval_split=0.0, eval_strategy="no", api_name="/start_training")
    status = poll_until_final(client, timeout=600)
    assert "Done" in status, status
    deadline = time.monotonic() + 60  # the worker frees the device once its memory is released, then ends
    while studio.runner.lock.locked():
        assert time.monotonic() < deadline, "the device stayed locked after the run ended"
        time.sleep(0.1)
    run_id = studio.runner.current_run_id
    client.predict(api_name="/chat_runs")
    short = 24  # new tokens per answer: enough for the house greeting, and quick on a small CPU
    base, adapter, base_chat, adapter_chat, _prompt = client.predict(
        "en", run_id, "Where is my parcel?", [], [], short, api_name="/ask")
    assert base.strip() and adapter.strip() and len(base_chat) == len(adapter_chat) == 2
    # a second turn continues each side's own conversation
    base2, adapter2, base_chat, adapter_chat, _ = client.predict(
        "en", run_id, "And when will it arrive?", base_chat, adapter_chat, short, api_name="/ask")
    assert base2.strip() and adapter2.strip() and len(base_chat) == len(adapter_chat) == 4
    assert studio.chat.loads == 1
    assert EN_GREETING not in base


def test_save_a_user_preset_and_load_it_back(serve, tmp_path, monkeypatch):
    import shutil

    from engine import presets

    folder = tmp_path / "presets"
    shutil.copytree(presets.PRESETS_DIR, folder)
    monkeypatch.setattr(presets, "PRESETS_DIR", folder)
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob))
    client = Client(url, verbose=False)
    client.predict(name="my-recipe", lora_r=8, learning_rate=5e-4, api_name="/save_preset")
    saved = presets.load_preset("my-recipe")
    assert saved.user and saved.settings["lora_r"] == 8 and saved.settings["learning_rate"] == 5e-4
    assert "dataset_path" not in saved.settings
    _about, *values = client.predict("en", "my-recipe", api_name="/apply_preset")
    assert 8 in values and 5e-4 in values
    with pytest.raises(Exception, match="ships with the studio"):
        client.predict(name="cpu-demo", api_name="/save_preset")
    with pytest.raises(Exception, match="cannot be a preset name"):
        client.predict(name="../evil", api_name="/save_preset")


def test_build_app_hands_the_public_url_to_the_invitation_links(tmp_path):
    from types import SimpleNamespace

    from ui import build_app

    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    study_id = studio.studies.create_study("s", [{"prompt": "q"}], tmp_path)
    loopback = SimpleNamespace(url=SimpleNamespace(scheme="http"), headers={"host": "127.0.0.1:7860"})
    links = {}
    for public_url in (None, "https://study.example.org"):
        app = build_app(studio, public_url=public_url)
        invite = next(fn.fn for fn in app.fns.values() if fn.api_name == "study_invite")
        shown = invite("en", study_id, f"Rater {len(links)}", "", loopback)
        links[public_url] = next(v for v in shown.values() if isinstance(v, str) and v.startswith("http"))
    assert links[None].startswith("http://127.0.0.1:7860/rate?invite=")
    assert links["https://study.example.org"].startswith("https://study.example.org/rate?invite=")
    assert studio.rater_for_invitation(links["https://study.example.org"].rsplit("=", 1)[1]).name == "Rater 1"
