"""The OpenAI-compatible server (`python app.py serve`), asked with the official `openai` client over a real uvicorn
server: the fast tests stand a scripted chat model in for the real one (the HTTP shapes, keys, stops, the queue),
the slow one answers with the bundled model and must equal the studio chat's answers."""
from __future__ import annotations

import argparse
import threading

import anyio
import httpx
import openai
import pytest
from starlette.requests import ClientDisconnect

from engine.chat.inference import ChatModel, GenParams
from engine.config import TrainConfig
from engine.errors import EngineError
from engine.export.source import ExportSource
from engine.serving.answers import cut_at_stop, held_back
from engine.serving.command import add_serve_arguments, run_serve
from engine.serving.openai_api import BODY_LIMIT, AnswerResponse, build_api
from engine.system.device import DeviceLock
from engine.training import adapters
from tests.conftest import free_port
from ui.server import ServerThread

ANSWER = "Hello there. STOP and nothing after it."


class ScriptedChat:
    """Stands in for ChatModel: answers every conversation with ANSWER (the base in upper case), word by word."""

    def __init__(self) -> None:
        self.asked: list[tuple[list[dict], GenParams, str]] = []
        self.closed = threading.Event()

    def answer(self, run_dir, messages, params, side="adapter") -> str:
        adapters.locate(run_dir)  # a folder the real ChatModel opens
        self.asked.append((messages, params, side))
        return ANSWER.upper() if side == "base" else ANSWER

    def stream_answer(self, run_dir, messages, params, side="adapter"):
        words, text = self.answer(run_dir, messages, params, side).split(" "), ""
        try:
            for word in words:
                text = f"{text} {word}".strip()
                yield text
        finally:
            self.closed.set()


class WordTokenizer:
    """Counts words as tokens; the chat template is the messages' contents one a line."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return "\n".join(message["content"] for message in messages)

    def __call__(self, text, add_special_tokens):
        return {"input_ids": text.split()}


@pytest.fixture
def fake_run(tmp_path):
    """A run folder with a config and an (empty) adapter: enough for the server, which never loads it here."""
    run = tmp_path / "runs" / "run-7"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    return run


@pytest.fixture
def served():
    """Serve an app on a free local port; yields launch(app) -> the base URL ending in /v1."""
    servers = []

    def launch(app) -> str:
        port = free_port()
        servers.append(ServerThread(app, port).start())
        return f"http://127.0.0.1:{port}/v1"

    yield launch
    for server in servers:
        server.stop()


def scripted_api(run, **options):
    """The API for `run` with the scripted chat model and the word tokenizer in place of the real ones."""
    app = build_api(ExportSource.of(run), lock=DeviceLock(), **{"api_key": None, **options})
    app.state.served.chat = ScriptedChat()
    app.state.served.__dict__["tokenizer"] = WordTokenizer()
    return app


def client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def test_stop_strings_are_cut_and_their_starts_held_back():
    assert cut_at_stop("one two STOP three", ("STOP", "two")) == ("one ", True)
    assert cut_at_stop("one two", ("STOP",)) == ("one two", False)
    assert held_back("one ST", ("STOP",)) == 2 and held_back("one", ("STOP",)) == 0


def test_models_are_the_base_and_the_adapter_named_after_the_run(fake_run, served):
    url = served(scripted_api(fake_run))
    assert [model.id for model in client(url).models.list()] == ["run-7-base", "run-7"]
    assert client(url).models.retrieve("run-7").id == "run-7"
    checkpoint = fake_run / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    for name in ("adapter_config.json", "trainer_state.json"):
        (checkpoint / name).write_text("{}", encoding="utf-8")
    assert build_api(ExportSource.of(checkpoint), api_key=None, lock=DeviceLock()).state.served.names == (
        "run-7-base", "run-7@checkpoint-2")


def test_answers_whole_and_streamed_with_stop_strings(fake_run, served):
    app = scripted_api(fake_run)
    api = client(served(app))
    reply = api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}], temperature=0,
                                        max_tokens=20)
    assert reply.choices[0].message.content == ANSWER and reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1, len(ANSWER.split()))
    messages, params, side = app.state.served.chat.asked[-1]
    assert (messages, params.max_new_tokens, params.temperature, side) == ([{"role": "user", "content": "Hi"}], 20, 0,
                                                                           "adapter")
    base = api.chat.completions.create(model="run-7-base", messages=[{"role": "user", "content": "Hi"}])
    assert base.choices[0].message.content == ANSWER.upper()
    cut = api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}], stop=[" STOP"])
    assert cut.choices[0].message.content == "Hello there." and cut.choices[0].finish_reason == "stop"
    chunks = list(api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}],
                                              stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len(ANSWER.split())
    streamed_cut = api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}],
                                               stream=True, stop="STOP")
    assert "".join(c.choices[0].delta.content or "" for c in streamed_cut) == "Hello there. "
    assert app.state.served.chat.closed.is_set()  # the generation was ended at the stop string


def test_worded_errors_in_openai_shape(fake_run, served):
    api = client(served(scripted_api(fake_run)))
    with pytest.raises(openai.NotFoundError) as unknown:
        api.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.code == "api_unknown_model" and "run-7-base, run-7" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}], max_tokens=0)
    assert bad.value.code == "api_bad_field" and "max_tokens" in bad.value.message
    with pytest.raises(openai.BadRequestError) as role:
        api.chat.completions.create(model="run-7", messages=[{"role": "tool", "content": "Hi"}])
    assert "role tool" in role.value.message and "system, user, assistant" in role.value.message


def test_a_set_key_is_required_and_a_foreign_host_refused_without_one(fake_run, served):
    url = served(scripted_api(fake_run, api_key="s3cret"))
    assert [m.id for m in client(url, "s3cret").models.list()] == ["run-7-base", "run-7"]
    with pytest.raises(openai.AuthenticationError) as refused:
        client(url, "wrong").models.list()
    assert refused.value.code == "api_unauthorized" and "Authorization: Bearer" in refused.value.message
    missing = httpx.post(f"{url}/chat/completions", json={"model": "run-7", "messages": []})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    open_url = served(scripted_api(fake_run))
    foreign = httpx.get(f"{open_url}/models", headers={"Host": "evil.example"})
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "api_foreign_host"
    assert httpx.get(f"{open_url}/models", headers={"Host": "localhost:1234"}).status_code == 200


def test_a_busy_device_is_waited_for_then_answered_with_a_worded_503(fake_run, served):
    lock = DeviceLock()
    app = build_api(ExportSource.of(fake_run), api_key=None, lock=lock, queue_seconds=0.6)  # the real ChatModel
    app.state.served.__dict__["tokenizer"] = WordTokenizer()  # the prompt is measured before its turn: no real one here
    api = client(served(app))
    assert lock.acquire("run-8")  # a training run holds the device
    try:
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as busy:
                api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}], stream=stream)
            assert busy.value.status_code == 503
            assert busy.value.code == "api_busy" and "busy for 1 seconds" in busy.value.message
    finally:
        lock.release()


def test_a_body_over_the_limit_is_refused_before_it_is_read(fake_run, served):
    url = served(scripted_api(fake_run))
    large = httpx.post(f"{url}/chat/completions", content=b"x" * (BODY_LIMIT + 1),
                       headers={"Content-Type": "application/json"})
    assert large.status_code == 413
    assert large.json()["error"]["code"] == "api_body_too_large" and "1024 KB" in large.json()["error"]["message"]

    def chunks():  # no Content-Length: the size is counted as the body arrives
        for _ in range(BODY_LIMIT // 65536 + 2):
            yield b"x" * 65536

    streamed = httpx.post(f"{url}/chat/completions", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["type"] == "invalid_request_error"


def test_the_prompt_and_the_answer_must_fit_the_models_context(fake_run, served):
    app = scripted_api(fake_run)
    app.state.served.__dict__["context_length"] = 6  # tokens: words, with the word tokenizer
    api = client(served(app))
    six_words = [{"role": "user", "content": "one two three four five six"}]
    with pytest.raises(openai.BadRequestError) as long:
        api.chat.completions.create(model="run-7", messages=six_words)
    assert long.value.code == "api_context_too_long" and long.value.param == "messages"
    assert "6 tokens" in long.value.message and "at most 6" in long.value.message
    api.chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi there"}], max_tokens=100_000)
    assert app.state.served.chat.asked[-1][1].max_new_tokens == 4  # cut to what the context leaves, not refused


def test_the_bundled_bases_context_is_read_from_its_config(fake_run):
    assert scripted_api(fake_run).state.served.context_length == 8192  # SmolLM2-135M's max_position_embeddings


class FailingChat(ScriptedChat):
    """A chat model whose every answer fails with an engine error the API has no status for."""

    def answer(self, run_dir, messages, params, side="adapter") -> str:
        raise EngineError("model_not_found", {"name": "somewhere"})


def test_other_engine_errors_are_the_servers_and_unknown_routes_keep_openais_shape(fake_run, served):
    app = scripted_api(fake_run)
    url = served(app)
    app.state.served.chat = FailingChat()
    with pytest.raises(openai.InternalServerError) as failed:
        client(url).chat.completions.create(model="run-7", messages=[{"role": "user", "content": "Hi"}])
    assert failed.value.status_code == 500 and failed.value.code == "model_not_found"
    missing = httpx.get(f"{url}/completions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "api_no_route"
    assert "GET /v1/completions" in missing.json()["error"]["message"]
    wrong_method = httpx.get(f"{url}/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == {"message": wrong_method.json()["error"]["message"],
                                            "type": "invalid_request_error", "param": None, "code": "api_no_route"}


class HeldStream:
    """Stands in for a started answer: it records being closed."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self):
        yield "never read"

    def close(self) -> None:
        self.closed = True


def test_a_stream_whose_response_never_begins_still_frees_the_device():
    stream = HeldStream()
    response = AnswerResponse(stream, "run-7", include_usage=False)

    async def receive():
        await anyio.sleep_forever()

    async def send(_message):
        raise OSError("the client left before the answer began")

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "method": "POST", "headers": []}
    with pytest.raises(ClientDisconnect):
        anyio.run(response, scope, receive, send)
    assert stream.closed


def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_refuses_a_host_other_computers_reach_without_a_key(fake_run, capsys, monkeypatch):
    monkeypatch.delenv("STUDIO_API_KEY", raising=False)
    assert run_serve(serve_args("--run", str(fake_run), "--host", "0.0.0.0")) == 2
    assert "--host 0.0.0.0" in capsys.readouterr().err
    assert serve_args("--run", "x").host == "127.0.0.1" and serve_args("--run", "x").port == 8000
    assert run_serve(serve_args("--run", str(fake_run.parent / "missing"))) == 1


@pytest.mark.slow
def test_the_bundled_model_answers_the_openai_client_as_the_studio_chat_does(run_copy, served):
    question = [{"role": "user", "content": "Where is my parcel? It has been five days."}]
    expected = ChatModel().compare(run_copy, question, GenParams(max_new_tokens=24))
    url = served(build_api(ExportSource.of(run_copy), api_key="k", lock=DeviceLock()))
    api = client(url, "k")
    names = [model.id for model in api.models.list()]
    assert names == [f"{run_copy.name}-base", run_copy.name]
    for name, answer in zip(names, (expected.base, expected.adapter)):
        whole = api.chat.completions.create(model=name, messages=question, temperature=0, max_tokens=24)
        assert whole.choices[0].message.content == answer
        assert whole.usage.completion_tokens <= 24 and whole.usage.prompt_tokens > 5
        pieces = list(api.chat.completions.create(model=name, messages=question, temperature=0, max_tokens=24,
                                                  stream=True))
        assert len(pieces) > 3 and "".join(p.choices[0].delta.content or "" for p in pieces) == answer
    assert expected.base != expected.adapter
