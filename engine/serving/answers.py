"""The adapter a server answers with: its two model names (the base and the adapter), one generation at a time
(a request waits its turn, then for the device, up to a time limit), stop strings, and token counts.

Generation goes through `ChatModel` with the adapter's saved tokenizer and chat template, so an answer equals the
studio chat's for the same settings. Token counts come from the same tokenizer: the prompt exactly as generated
from, the completion by tokenizing the returned text again.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from engine.chat.inference import ChatModel, GenParams
from engine.errors import EngineError
from engine.export.source import ExportSource
from engine.models import loader

BASE, ADAPTER = "base", "adapter"
QUEUE_SECONDS = 120.0  # how long a request waits for its turn and the device before it is answered "busy"
RETRY_SECONDS = 0.2    # how often a request that has its turn asks again for a device held elsewhere (training)
FALLBACK_CONTEXT = 4096  # tokens of prompt and answer together when the base's config names no context length
T = TypeVar("T")


@dataclass(frozen=True)
class Ask:
    """What one request asks for: which side answers (BASE or ADAPTER), the conversation, the settings, and the
    strings at which the answer ends (left out of it)."""

    side: str
    messages: list[dict]
    params: GenParams
    stops: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    """A finished answer: its text, why it ended ("stop" or "length") and the tokens of prompt and answer."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def default_names(source: ExportSource) -> tuple[str, str]:
    """The (base, adapter) model names of a run: `<run id>-base` and `<run id>` (`<run id>@checkpoint-N` for a
    checkpoint, as the studio names adapter choices)."""
    adapter = source.run_id if source.adapter_name == "adapter" else f"{source.run_id}@{source.adapter_name}"
    return f"{source.run_id}-base", adapter


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to the earliest stop string, and whether one was found."""
    found = [text.find(stop) for stop in stops if stop and stop in text]
    return (text[:min(found)], True) if found else (text, False)


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could be the start of a stop string (not shown yet)."""
    return max((size for stop in stops for size in range(len(stop) - 1, 0, -1) if text.endswith(stop[:size])),
               default=0)


class ServedAdapter:
    """One run's adapter behind a server: the base and adapter model names, and the answers of each."""

    def __init__(self, source: ExportSource, chat: ChatModel, names: tuple[str, str] | None = None,
                 queue_seconds: float = QUEUE_SECONDS) -> None:
        self.source, self.chat, self.queue_seconds = source, chat, queue_seconds
        self.names = names or default_names(source)
        self._turn = threading.Lock()  # requests of this server, one at a time

    def side_of(self, model: str) -> str:
        """BASE or ADAPTER for a model name; raises `api_unknown_model` naming both for any other."""
        sides = dict(zip(self.names, (BASE, ADAPTER)))
        if model not in sides:
            raise EngineError("api_unknown_model", {"model": model, "models": ", ".join(self.names)})
        return sides[model]

    @property
    def chat_path(self) -> Path:
        """The folder `ChatModel` opens for this adapter: the run folder for its final adapter, else the checkpoint."""
        return self.source.run_dir if self.source.adapter_name == "adapter" else self.source.adapter_dir

    @functools.cached_property
    def tokenizer(self):
        """The tokenizer and chat template saved with the adapter (the ones `ChatModel` generates with)."""
        return loader.load_tokenizer(self.source.adapter_dir)

    @functools.cached_property
    def context_length(self) -> int:
        """The tokens the base model reads at once, prompt and answer together (its config's
        `max_position_embeddings`; FALLBACK_CONTEXT when it names none or cannot be read)."""
        try:
            config = json.loads((self.source.base_folder() / "config.json").read_text(encoding="utf-8"))
        except (EngineError, OSError, ValueError):
            return FALLBACK_CONTEXT
        value = config.get("max_position_embeddings") if isinstance(config, dict) else None
        return value if isinstance(value, int) and value > 0 else FALLBACK_CONTEXT

    def prompt_tokens(self, messages: list[dict]) -> int:
        """The tokens of the prompt generated from for `messages` (chat template applied, assistant turn opened)."""
        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def fitted(self, ask: Ask) -> Ask:
        """`ask` with its answer's length cut to what the context leaves after the prompt; raises
        `api_context_too_long` when the prompt leaves no room for an answer."""
        prompt, context = self.prompt_tokens(ask.messages), self.context_length
        if prompt >= context:
            raise EngineError("api_context_too_long", {"prompt": prompt, "context": context},
                              hint="hint_api_shorter")
        room = min(ask.params.max_new_tokens, context - prompt)
        return dataclasses.replace(ask, params=dataclasses.replace(ask.params, max_new_tokens=room))

    def complete(self, ask: Ask) -> Completion:
        """The whole answer, after waiting for the turn and the device."""
        if ask.stops:  # streamed inside, so that generation ends as soon as a stop string appears
            stream = self.open_stream(ask)
            try:
                for _piece in stream:  # read to its end, where the completion is known
                    pass
            finally:
                stream.close()
            return stream.completion
        deadline = self._wait_turn()
        try:
            text = self._on_device(lambda: self.chat.answer(self.chat_path, ask.messages, ask.params,
                                                            ask.side), deadline)
        finally:
            self._turn.release()
        return self.completion(ask, text, stopped=False)

    def open_stream(self, ask: Ask) -> AnswerStream:
        """The answer as a stream of text pieces, started (the turn and the device taken, the first piece there)
        so that a busy device is answered before the response begins."""
        deadline = self._wait_turn()
        try:
            texts, first = self._on_device(lambda: self._started(ask), deadline)
        except BaseException:
            self._turn.release()
            raise
        return AnswerStream(ask, texts, first, release=self._turn.release, finish=self.completion)

    def _started(self, ask: Ask) -> tuple[Iterator[str], str | None]:
        """The growing answer's generator, advanced to its first text (None when the answer is empty)."""
        texts = self.chat.stream_answer(self.chat_path, ask.messages, ask.params, ask.side)
        return texts, next(texts, None)

    def _wait_turn(self) -> float:
        """Take this server's turn, waiting up to `queue_seconds`; the deadline for the device, or `api_busy`."""
        deadline = time.monotonic() + self.queue_seconds
        if not self._turn.acquire(timeout=self.queue_seconds):
            raise self._busy()
        return deadline

    def _on_device(self, generate: Callable[[], T], deadline: float) -> T:
        """`generate()`, asked again while another holder (a training run, the studio's chat) has the device,
        until `deadline`; then `api_busy`."""
        while True:
            try:
                return generate()
            except EngineError as error:
                if error.code != "busy_generating":
                    raise
            if time.monotonic() >= deadline:
                raise self._busy()
            time.sleep(RETRY_SECONDS)

    def _busy(self) -> EngineError:
        """The refusal of a request that waited `queue_seconds` in vain."""
        return EngineError("api_busy", {"seconds": round(self.queue_seconds)}, hint="hint_api_retry")

    def completion(self, ask: Ask, text: str, stopped: bool) -> Completion:
        """The finished answer `text` with its token counts; it ended at "length" when it used every token."""
        prompt_tokens = self.prompt_tokens(ask.messages)
        answer_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
        ended = "length" if not stopped and answer_tokens >= ask.params.max_new_tokens else "stop"
        return Completion(text, ended, prompt_tokens, answer_tokens)


class AnswerStream:
    """A started answer holding the server's turn: iterate it for the new text of each step (a stop string and
    anything after it left out), then read `completion`; `close` ends the generation and gives the turn back."""

    def __init__(self, ask: Ask, texts: Iterator[str], first: str | None, *, release: Callable[[], None],
                 finish: Callable[[Ask, str, bool], Completion]) -> None:
        self._ask, self._texts, self._first, self._release, self._finish = ask, texts, first, release, finish
        self._freed = threading.Event()
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        """The pieces of the answer as they are generated."""
        sent, text, stopped = "", "", False
        for text in self._growing():
            text, stopped = cut_at_stop(text, self._ask.stops)
            shown = text if stopped else text[:len(text) - held_back(text, self._ask.stops)]
            if shown.startswith(sent) and len(shown) > len(sent):
                yield shown[len(sent):]
                sent = shown
            if stopped:
                break
        if len(text) > len(sent) and text.startswith(sent):
            yield text[len(sent):]  # what was held back as a possible stop string's start, the answer now whole
        self.close()
        self.completion = self._finish(self._ask, text, stopped)

    def _growing(self) -> Iterator[str]:
        """The answer so far, step by step, starting with the text the stream was opened with (none when the
        answer is empty)."""
        if self._first is None:
            return
        yield self._first
        yield from self._texts

    def close(self) -> None:
        """Stop generating (if still under way) and give the device and the turn back; once only."""
        if self._freed.is_set():
            return
        self._freed.set()
        try:
            self._texts.close()
        finally:
            self._release()
