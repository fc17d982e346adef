"""An OpenAI-compatible HTTP API for one run's adapter (FastAPI): `GET /v1/models` lists the base and the adapter
as two model names, `POST /v1/chat/completions` answers with either, whole or streamed as server-sent events.

Generation runs one request at a time on the device lock (`ServedAdapter`); a request waits its turn, then gets a
worded 503. A request body over BODY_LIMIT is refused (413) before it is read; a prompt the base model's context
cannot hold with room for an answer is refused (400), and `max_tokens` is cut to what the context leaves.
With an API key every request must carry it (`Authorization: Bearer KEY`); without one, only requests naming
this computer (a loopback Host) are answered, so a web page cannot reach the API by renaming itself.
Errors come in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, worded in English for API
clients; `code` is the catalogue code. Settings a request leaves out take the studio chat's defaults (greedy,
repetition penalty 1.1), so the same request gives the studio chat's answer.
"""
from __future__ import annotations

import hmac
import json
import time
import urllib.parse
import uuid

import anyio
import fastapi
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.chat.inference import ChatModel, GenParams
from engine.errors import EngineError
from engine.export.source import ExportSource
from engine.locales import render_error
from engine.serving.answers import AnswerStream, Ask, Completion, ServedAdapter
from engine.serving.limits import read_limited, replaying
from engine.system.device import DeviceLock

DEFAULT_MAX_TOKENS = 512
BODY_LIMIT = 1024 * 1024  # bytes: the most a request carries (a long conversation is far less)
ROLES = ("system", "user", "assistant")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
STATUS = {"api_bad_role": 400, "api_bad_field": 400, "api_context_too_long": 400, "api_foreign_host": 400,
          "api_unauthorized": 401, "api_unknown_model": 404, "api_no_route": 404, "api_body_too_large": 413,
          "api_busy": 503, "busy_generating": 503}  # any other engine error is the server's failure: 500
PARAMS = {"api_context_too_long": "messages"}  # the request field an error is about, when not named otherwise
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
               405: "invalid_request_error", 413: "invalid_request_error"}


class ChatMessage(BaseModel):
    """One message of the conversation: its role and its text (a string, or a list of text parts)."""

    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[dict] | None = None

    def as_dict(self) -> dict:
        """The message as the chat template takes it: role and one string."""
        if isinstance(self.content, list):
            return {"role": self.role, "content": "".join(str(part.get("text", "")) for part in self.content)}
        return {"role": self.role, "content": self.content or ""}


class StreamOptions(BaseModel):
    """What a streamed answer adds: `include_usage` sends the token counts in a last chunk."""

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The body of `POST /v1/chat/completions` (fields this server does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)  # cut to what the context leaves after the prompt
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)

    def ask(self, side: str) -> Ask:
        """What to generate, for `side`; raises `api_bad_role` for a message role the chat template does not take."""
        for index, message in enumerate(self.messages):
            if message.role not in ROLES:
                raise EngineError("api_bad_role", {"index": index, "role": message.role, "roles": ", ".join(ROLES)})
        defaults = GenParams()
        params = GenParams(
            max_new_tokens=self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=self.top_p or defaults.top_p,
            repetition_penalty=self.repetition_penalty or defaults.repetition_penalty,
            seed=defaults.seed if self.seed is None else self.seed)
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return Ask(side, [message.as_dict() for message in self.messages], params, tuple(s for s in stops if s))


def error_response(error: EngineError, status: int | None = None, param: str | None = None) -> JSONResponse:
    """An EngineError as OpenAI's error JSON, worded in English, with its HTTP status and the field it is about (by
    code unless given; 500 for a code the API does not answer with on purpose)."""
    status = status or STATUS.get(error.code, 500)
    return JSONResponse(error_body(error, status, param or PARAMS.get(error.code)), status_code=status)


def error_body(error: EngineError, status: int, param: str | None = None) -> dict:
    """OpenAI's error object for `error` answered with `status`."""
    kind = ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": render_error(error, "en"), "type": kind, "param": param, "code": error.code}}


def bad_field(_request: fastapi.Request, problem: Exception) -> JSONResponse:
    """A request body that does not fit: a 400 naming the first field at fault and what is wrong with it."""
    first = problem.errors()[0] if isinstance(problem, RequestValidationError) and problem.errors() else {}
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    error = EngineError("api_bad_field", {"field": field, "problem": first.get("msg", str(problem))})
    return error_response(error, 400, field)


def no_route(request: fastapi.Request, problem: Exception) -> JSONResponse:
    """A path the API does not have (404) or a method a path does not take (405), in OpenAI's error shape."""
    status = problem.status_code if isinstance(problem, HTTPException) else 404
    error = EngineError("api_no_route", {"method": request.method, "path": request.url.path})
    return error_response(error, status)


def failed(_request: fastapi.Request, problem: Exception) -> JSONResponse:
    """An unexpected failure while answering: a worded 500 rather than a traceback."""
    return error_response(EngineError("api_generation_failed", {"reason": str(problem) or type(problem).__name__}))


def completion_body(reply_id: str, model: str, completion: Completion) -> dict:
    """A whole answer as OpenAI's `chat.completion` object."""
    return {"id": reply_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                         "finish_reason": completion.finish_reason, "logprobs": None}],
            "usage": usage(completion)}


def usage(completion: Completion) -> dict:
    """The token counts of an answer, as OpenAI reports them."""
    return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens}


def chunk(reply_id: str, model: str, delta: dict, finish_reason: str | None = None) -> dict:
    """One `chat.completion.chunk` of a streamed answer."""
    return {"id": reply_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}


def event(data: dict | str) -> str:
    """One server-sent event carrying `data` (a JSON object, or the closing `[DONE]`)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


async def streamed(stream: AnswerStream, model: str, include_usage: bool):
    """The server-sent events of a streamed answer: the role, each new piece of text, the reason it ended, the
    token counts when asked for, then `[DONE]`; a failure midway is sent as an error event (`AnswerResponse` ends
    the generation and frees the device however the stream ends)."""
    reply_id = f"chatcmpl-{uuid.uuid4().hex}"
    try:
        yield event(chunk(reply_id, model, {"role": "assistant", "content": ""}))
        async for piece in iterate_in_threadpool(iter(stream)):
            yield event(chunk(reply_id, model, {"content": piece}))
        yield event(chunk(reply_id, model, {}, stream.completion.finish_reason))
        if include_usage:
            yield event({**chunk(reply_id, model, {}), "choices": [], "usage": usage(stream.completion)})
    except EngineError as error:
        yield event(error_body(error, STATUS.get(error.code, 500)))
    except Exception as problem:  # noqa: BLE001 -- worded to the client, which would otherwise see a cut stream
        yield event(error_body(EngineError("api_generation_failed", {"reason": str(problem)}), 500))
    yield event("[DONE]")


class AnswerResponse(StreamingResponse):
    """The server-sent events of a started answer, which gives the device and the turn back however the response
    ends: finished, failed, the client gone, or never begun (a generator that was never started runs no `finally`
    of its own)."""

    def __init__(self, stream: AnswerStream, model: str, include_usage: bool) -> None:
        super().__init__(streamed(stream, model, include_usage), media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the answer, then close its stream (shielded: a client that left cancels the response)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.stream.close)


class BodyLimit:
    """ASGI middleware refusing a request body over `limit` bytes (by its Content-Length, or as it arrives) with a
    413 in OpenAI's error shape before the API reads any of it."""

    def __init__(self, app: ASGIApp, limit: int = BODY_LIMIT) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request of an allowed size on with its body; refuse a larger one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages = await read_limited(scope, receive, self.limit)
        if messages is None:
            error = EngineError("api_body_too_large", {"max": self.limit // 1024})
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, replaying(messages, receive), send)


def key_check(api_key: str | None):
    """The dependency every route has: with a key, the request's bearer key must equal it (compared in constant
    time); without one, the request must name a loopback host (refused otherwise: `api_foreign_host`)."""

    def check(request: fastapi.Request) -> None:
        """Refuse the request unless it may be answered."""
        if api_key is None:
            host = urllib.parse.urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
            if host not in LOOPBACK_NAMES:
                raise EngineError("api_foreign_host", {"host": host or "-"}, hint="hint_api_loopback")
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise EngineError("api_unauthorized", hint="hint_api_key")

    return check


def build_api(source: ExportSource, *, api_key: str | None, lock: DeviceLock,
              model_names: tuple[str, str] | None = None, queue_seconds: float | None = None) -> fastapi.FastAPI:
    """The API for `source`'s adapter: `model_names` are (base, adapter), by default `<run id>-base` and `<run id>`;
    generation takes `lock`; a request waits up to `queue_seconds` (default `answers.QUEUE_SECONDS`) for its turn."""
    options = {} if queue_seconds is None else {"queue_seconds": queue_seconds}
    served = ServedAdapter(source, ChatModel(lock), model_names, **options)
    app = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None,
                          dependencies=[fastapi.Depends(key_check(api_key))],
                          exception_handlers={EngineError: lambda _request, error: error_response(error),
                                              RequestValidationError: bad_field, HTTPException: no_route,
                                              Exception: failed})
    app.add_middleware(BodyLimit)
    created = int(source.adapter_dir.stat().st_mtime)

    def model_entry(name: str) -> dict:
        """One model of `/v1/models`."""
        return {"id": name, "object": "model", "created": created, "owned_by": "studio"}

    @app.get("/v1/models")
    def models() -> dict:
        """The base and the adapter, as two model names."""
        return {"object": "list", "data": [model_entry(name) for name in served.names]}

    @app.get("/v1/models/{name:path}")
    def model(name: str) -> dict:
        """One model by name; `api_unknown_model` for another."""
        served.side_of(name)
        return model_entry(name)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest):
        """An answer from the base or the adapter, whole or streamed as server-sent events."""
        ask = await run_in_threadpool(served.fitted, body.ask(served.side_of(body.model)))
        if not body.stream:
            completion = await run_in_threadpool(served.complete, ask)
            return completion_body(f"chatcmpl-{uuid.uuid4().hex}", body.model, completion)
        stream = await run_in_threadpool(served.open_stream, ask)
        return AnswerResponse(stream, body.model, bool(body.stream_options and body.stream_options.include_usage))

    app.state.served = served  # for a caller that wants the names or the chat model
    return app
