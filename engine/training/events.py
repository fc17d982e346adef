"""Run events and the append-only EventLog that many readers follow by cursor.

The training thread appends; the UI, the CLI and tests read with `since(cursor)`. A reader never
consumes events, so a page reload or a second tab replays the whole run from cursor 0. Each event is
also appended as one JSON line to `events.jsonl`, so a finished or crashed run can be read back.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from engine.system.files import write_text_atomic


class RunState(str, Enum):
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
        return self in (RunState.LOADING, RunState.TRAINING, RunState.SAVING)


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run. `kind` is "status", "log" or "error"."""

    seq: int
    time: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> "Event":
        raw = json.loads(line)
        return cls(seq=raw["seq"], time=raw["time"], kind=raw["kind"], data=raw.get("data", {}))


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
    error: dict[str, Any] | None = None
    progress: str | None = None  # message code of the latest slow step (conversion, model loading)


class EventLog:
    """Thread-safe, sequence-numbered, append-only; mirrored line by line to `path` if given."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._path = Path(path) if path else None
        if self._path:
            self._path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, kind: str, **data: Any) -> Event:
        with self._lock:
            event = Event(seq=len(self._events), time=time.time(), kind=kind, data=data)
            self._events.append(event)
            if self._path:
                with self._path.open("a", encoding="utf-8") as fh:
                    fh.write(event.to_json() + "\n")
        return event

    def since(self, cursor: int) -> tuple[list[Event], int]:
        """Events with seq >= cursor and the cursor to pass next time."""
        with self._lock:
            events = self._events[max(cursor, 0):]
            return events, len(self._events)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    @classmethod
    def read(cls, path: str | Path) -> "EventLog":
        """Load a run's `events.jsonl` (a torn last line from a crash is skipped)."""
        log = cls()
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                log._events.append(Event.from_json(line))
            except (ValueError, KeyError):
                continue
        return log

    @classmethod
    def reopen(cls, path: str | Path) -> "EventLog":
        """An existing run's log that new events continue (sequence numbers go on from the last)."""
        log = cls.read(path)
        log._events = [Event(i, e.time, e.kind, e.data) for i, e in enumerate(log._events)]
        log._path = Path(path)
        write_text_atomic(log._path, "".join(e.to_json() + "\n" for e in log._events))
        return log


def snapshot(run_id: str | None, events: list[Event]) -> RunSnapshot:
    """Fold events into the current picture of a run."""
    state, step, max_steps, epoch = RunState.IDLE, 0, 0, 0.0
    loss = eval_loss = None
    error = progress = None
    for event in events:
        data = event.data
        if event.kind == "status":
            state = RunState(data["state"])
            max_steps = data.get("max_steps", max_steps)
        elif event.kind == "log":
            step = data.get("step", step)
            epoch = data.get("epoch", epoch)
            loss = data.get("loss", loss)
            eval_loss = data.get("eval_loss", eval_loss)
        elif event.kind == "error":
            error = data
        elif event.kind == "progress":
            progress = data.get("message")
    return RunSnapshot(run_id, state, step, max_steps, epoch, loss, eval_loss, error, progress)
