"""Typed run events and the append-only EventLog that many readers follow by cursor.

The training thread appends; the UI, the CLI and tests read with `since(cursor)`. A reader never
consumes events, so a page reload or a second tab replays the whole run from cursor 0. Each event is
also appended as one JSON line to `events.jsonl`, so a finished or crashed run can be read back:
`{"seq": 3, "time": 1700000000.5, "kind": "log", "data": {"step": 2, "loss": 1.9}}` (the line format of
earlier versions, so their runs still load). A line that cannot be read is skipped and counted, never
rewritten or dropped from the file. A status change or an error is synced to the disk when appended (a power cut
or a killed machine never loses where a run stands); a log or progress line is not (see `Event.durable`).
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from engine.errors import EngineError
from engine.locales import render

LOGGER = logging.getLogger(__name__)


class RunState(str, Enum):
    """The stages of a run's life; the last status event of a run gives its state."""

    IDLE = "IDLE"
    LOADING = "LOADING"
    TRAINING = "TRAINING"
    SAVING = "SAVING"
    DONE = "DONE"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"  # the app process died mid-run; the run can be resumed from a checkpoint

    @property
    def is_live(self) -> bool:
        """Whether a run in this state is still going (LOADING, TRAINING or SAVING)."""
        return self in (RunState.LOADING, RunState.TRAINING, RunState.SAVING)


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run; `seq` and `time` are stamped by the log that records it.

    Equality compares what happened (the kind and its fields), not when: a reader or a test can
    compare a logged event with a fresh one. `kind` tags each subclass in the JSON line, and each
    subclass reads its own fields from a line's `data` with `from_data`.
    """

    kind: ClassVar[str] = ""
    # Whether the line is synced to the disk (flush and fsync) when appended. Only status changes and errors are:
    # they say where a run stands, which recovery, resume and the run list rely on. Log and progress lines come
    # every logging step, and an fsync there costs milliseconds (far more on a network or spinning disk) per step,
    # while losing the last few points of a curve to a power cut is harmless.
    durable: ClassVar[bool] = False
    seq: int = field(default=0, kw_only=True, compare=False)
    time: float = field(default=0.0, kw_only=True, compare=False)

    def payload(self) -> dict[str, Any]:
        """The event's fields as plain values (the line's `data`): a field that is None is left out, a
        state is its name, a non-finite number is None (a log's payload is a point of its curves)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)
                if f.name not in ("seq", "time") and getattr(self, f.name) is not None}

    def to_json(self) -> str:
        """The event as one `events.jsonl` line (without the newline)."""
        return json.dumps({"seq": self.seq, "time": self.time, "kind": self.kind, "data": self.payload()},
                          ensure_ascii=False)

    @staticmethod
    def from_json(line: str) -> "Event":
        """The event of one `events.jsonl` line, of the class its `kind` names; ValueError when the line
        is not a whole, valid event (bad JSON, an unknown kind or state, a missing or mistyped field)."""
        try:
            raw = json.loads(line)
            event_class = EVENT_KINDS[raw["kind"]]
            data = raw.get("data", {})
            if not isinstance(data, dict):
                raise TypeError("data is not an object")
            event = event_class.from_data(data)
            return replace(event, seq=_required(raw, "seq", int), time=float(_required(raw, "time", (int, float))))
        except (KeyError, TypeError, OverflowError, RecursionError) as exc:  # JSON, but not an event
            raise ValueError(f"not an event line: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class StatusEvent(Event):
    """The run entered `state`; LOADING carries the usable rows (and the checkpoint when resumed),
    TRAINING the number of steps."""

    kind: ClassVar[str] = "status"
    durable: ClassVar[bool] = True
    state: RunState
    max_steps: int | None = None
    rows: int | None = None
    resumed_from: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "StatusEvent":
        """The event from a line's `data`; KeyError, TypeError or ValueError when a field is missing or wrong."""
        return cls(RunState(_required(data, "state", str)), max_steps=_optional(data, "max_steps", int),
                   rows=_optional(data, "rows", int), resumed_from=_optional(data, "resumed_from", str))


# TRL's DPO reward logs -> the LogEvent fields that carry them (a trainer log key may not hold "/")
DPO_METRICS = {"rewards/chosen": "rewards_chosen", "rewards/rejected": "rewards_rejected",
               "rewards/margins": "rewards_margins", "rewards/accuracies": "rewards_accuracies",
               "eval_rewards/margins": "eval_rewards_margins", "eval_rewards/accuracies": "eval_rewards_accuracies"}
METRICS = ("loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy", "entropy",
           *DPO_METRICS.values())


@dataclass(frozen=True)
class LogEvent(Event):
    """One trainer log: where training is and the metrics it reported. None means not reported; NaN
    means the trainer reported a non-finite number (written as null, as earlier versions did)."""

    kind: ClassVar[str] = "log"
    step: int
    epoch: float | None = None
    max_steps: int | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    mean_token_accuracy: float | None = None
    entropy: float | None = None
    tokens_per_second: float | None = None
    tokens_seen: int | None = None
    memory_mb: float | None = None
    peak_memory_mb: float | None = None  # the most held so far: CUDA reserved, else peak resident memory
    rewards_chosen: float | None = None  # DPO: beta x the log-ratio to the reference of the chosen answers
    rewards_rejected: float | None = None
    rewards_margins: float | None = None  # chosen minus rejected reward
    rewards_accuracies: float | None = None  # share of pairs whose chosen answer has the higher reward
    eval_rewards_margins: float | None = None
    eval_rewards_accuracies: float | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "LogEvent":
        """The event from a line's `data` (a metric written as null reads as NaN); KeyError or TypeError if bad."""
        floats = ("epoch", *METRICS, "tokens_per_second", "memory_mb", "peak_memory_mb")
        return cls(_required(data, "step", int), max_steps=_optional(data, "max_steps", int),
                   tokens_seen=_optional(data, "tokens_seen", int), **{name: _metric(data, name) for name in floats})


@dataclass(frozen=True)
class ProgressEvent(Event):
    """A slow step before training began (conversion, model loading), as a message code."""

    kind: ClassVar[str] = "progress"
    message: str

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "ProgressEvent":
        """The event from a line's `data`; KeyError or TypeError when the message is missing or not text."""
        return cls(_required(data, "message", str))


@dataclass(frozen=True)
class ErrorEvent(Event):
    """Why the run failed: an EngineError's code, parameters and hint."""

    kind: ClassVar[str] = "error"
    durable: ClassVar[bool] = True
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None

    @classmethod
    def from_error(cls, error: EngineError) -> "ErrorEvent":
        """The event recording `error`, its parameters made plain JSON values."""
        params = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                  for k, v in error.params.items()}
        return cls(error.code, params, error.hint)

    def to_error(self) -> EngineError:
        """The EngineError again, to word it like any other."""
        return EngineError(self.code, dict(self.params), hint=self.hint)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "ErrorEvent":
        """The event from a line's `data`; KeyError or TypeError when the code is missing or a field is mistyped."""
        return cls(_required(data, "code", str), dict(_optional(data, "params", dict) or {}),
                   _optional(data, "hint", str))


EVENT_KINDS: dict[str, type[Event]] = {c.kind: c for c in (StatusEvent, LogEvent, ProgressEvent, ErrorEvent)}


def _plain(value: Any) -> Any:
    """A field's JSON value: a state by its name, a non-finite number as null."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _required(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} is {value!r}")
    return value


def _optional(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    return None if data.get(name) is None else _required(data, name, kind)


def _metric(data: dict[str, Any], name: str) -> float | None:
    """A reported number: None when absent, NaN when written as null (non-finite)."""
    if name not in data:
        return None
    return math.nan if data[name] is None else float(_required(data, name, (int, float)))


@dataclass(frozen=True)
class RunSnapshot:
    """What a reader needs to redraw a run: its state, progress and the last metrics."""

    run_id: str | None
    state: RunState
    step: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    last_loss: float | None = None
    last_eval_loss: float | None = None
    error: ErrorEvent | None = None
    progress: str | None = None  # message code of the latest slow step (conversion, model loading)
    skipped_lines: int = 0  # lines of the run's events.jsonl that could not be read


class EventLog:
    """Thread-safe, sequence-numbered, append-only; mirrored line by line to `path` if given.

    A cursor is a position in the log (the count of events already seen), so it stays valid while
    the log grows. `skipped` counts the lines of a read file that were not whole, valid events.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._path = Path(path) if path else None
        self._next_seq = 0
        self._open_line = False  # the file ends inside a line (torn by a crash): start the next one on its own
        self.skipped = 0
        self.write_failures = 0  # events kept in memory that the file could not take (a full disk)
        if self._path:
            self._path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, event: Event) -> Event:
        """Record `event` with the next sequence number and the current time; returns it stamped."""
        with self._lock:
            stamped = replace(event, seq=self._next_seq, time=time.time())
            self._next_seq += 1
            self._events.append(stamped)
            if self._path:
                self._write(stamped)
        return stamped

    def _write(self, event: Event) -> None:
        """Append `event`'s line to the file (synced to the disk when the event is durable); when the file cannot
        take it, the event stays in memory (readers and the run go on), the failure is counted and logged once,
        and the next line starts on its own."""
        line = event.to_json().encode("utf-8") + b"\n"
        data = b"\n" + line if self._open_line else line
        self._open_line = True  # until the whole line is down
        try:
            with self._path.open("ab") as fh:
                fh.write(data)
                if event.durable:
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as error:
            self.write_failures += 1
            if self.write_failures == 1:
                LOGGER.warning(render("events_write_failed", {"path": str(self._path), "reason": str(error)}))
            return
        self._open_line = False

    def since(self, cursor: int) -> tuple[list[Event], int]:
        """Events from position `cursor` on and the cursor to pass next time."""
        with self._lock:
            events = self._events[max(cursor, 0):]
            return events, len(self._events)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    @classmethod
    def read(cls, path: str | Path, tail_may_grow: bool = False) -> "EventLog":
        """Load a run's `events.jsonl` line by line: a line cut by a crash (even inside a character),
        garbage, or an event this version does not know is skipped and counted in `skipped`. With
        `tail_may_grow` (another process is still writing the run), an unfinished last line is not counted:
        it is most likely being written."""
        log = cls()
        last = b""
        with Path(path).open("rb") as fh:
            for last in fh:
                if not last.strip():
                    continue
                try:
                    event = Event.from_json(last.decode("utf-8"))
                except ValueError:
                    log.skipped += 0 if tail_may_grow and not last.endswith(b"\n") else 1
                    continue
                log._events.append(event)
                log._next_seq = max(log._next_seq, event.seq + 1)
        log._open_line = bool(last) and not last.endswith(b"\n")
        return log

    @classmethod
    def reopen(cls, path: str | Path) -> "EventLog":
        """An existing run's log that new events continue: the file is only appended to, and sequence
        numbers go on from the highest readable one."""
        log = cls.read(path) if Path(path).is_file() else cls()
        log._path = Path(path)
        return log


def snapshot(run_id: str | None, events: list[Event], skipped_lines: int = 0) -> RunSnapshot:
    """Fold events into the current picture of a run (a non-finite loss reads as unknown)."""
    state, step, max_steps, epoch = RunState.IDLE, 0, 0, 0.0
    loss = eval_loss = error = progress = None
    for event in events:
        if isinstance(event, StatusEvent):
            state = event.state
            max_steps = _latest(event.max_steps, max_steps)
        elif isinstance(event, LogEvent):
            step, epoch = event.step, _latest(event.epoch, epoch)
            loss, eval_loss = _latest(event.loss, loss), _latest(event.eval_loss, eval_loss)
        elif isinstance(event, ErrorEvent):
            error = event
        elif isinstance(event, ProgressEvent):
            progress = event.message
    return RunSnapshot(run_id, state, step, max_steps, epoch, loss, eval_loss, error, progress, skipped_lines)


def _latest(value: Any, previous: Any) -> Any:
    """A newly reported value replaces the previous one; a non-finite number is unknown (None)."""
    if value is None:
        return previous
    return _plain(value)
