"""Following a run's `events.jsonl` that another process writes, by byte offset: each read parses only
the bytes added since the last one, so a reader polling every half second costs next to nothing."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from engine.training.events import Event


class EventFollower:
    """The events of a file another process appends to, read incrementally; reads like an `EventLog`
    (`since(cursor)`, `skipped`). A line not yet finished is left for the next read; it counts as skipped
    only once its writer is gone (`writer_alive` says whether one still writes)."""

    def __init__(self, path: str | Path, writer_alive: Callable[[], bool]) -> None:
        self.path = Path(path)
        self.writer_alive = writer_alive
        self._events: list[Event] = []
        self._offset = 0  # the bytes read: up to the end of the last whole line
        self._bad = 0
        self._unfinished = False  # the file ends inside a line
        self._lock = threading.Lock()

    def since(self, cursor: int) -> tuple[list[Event], int]:
        """Events from position `cursor` on (reading what was added to the file first), and the next cursor."""
        with self._lock:
            self._read_new()
            return self._events[max(cursor, 0):], len(self._events)

    @property
    def skipped(self) -> int:
        """Lines that could not be read as events (an unfinished last line once nobody will finish it)."""
        return self._bad + (1 if self._unfinished and not self.writer_alive() else 0)

    def __len__(self) -> int:
        return len(self.since(0)[0])

    def _read_new(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                added = fh.read()
        except OSError:
            return
        whole, _sep, rest = added.rpartition(b"\n")
        if _sep:
            self._offset += len(whole) + 1
            for line in whole.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    self._events.append(Event.from_json(line.decode("utf-8")))
                except ValueError:
                    self._bad += 1
        self._unfinished = bool(rest.strip())
