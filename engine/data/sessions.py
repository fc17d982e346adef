"""The datasets being edited, one per browser session: each session edits, undoes and saves only its own
rows; a session's editor is dropped after a quiet hour, and the least recently used goes first when
too many sessions are open."""
from __future__ import annotations

import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from engine.data.cells import grid_value
from engine.data.editor import DatasetEditor, page_number
from engine.data.mapping import ColumnMapping

IDLE_SECONDS = 3600.0
MAX_SESSIONS = 32

# A change to the rows, by name: the editor method and its arguments; each returns the count the page
# announces (rows or cells changed, the new row's position, 1 when something was undone).
EDITS: dict[str, Callable[..., int]] = {
    "apply": DatasetEditor.apply_grid,
    "add": lambda editor: editor.add_row(),
    "duplicate": DatasetEditor.duplicate_row,
    "delete": DatasetEditor.delete_rows,
    "dedup": DatasetEditor.remove_exact_duplicates,
    "strip": DatasetEditor.strip_whitespace,
    "drop_empty": DatasetEditor.drop_empty_rows,
    "undo": lambda editor: int(editor.undo()),
}


@dataclass
class EditorPage:
    """One page of the session's dataset: its rows as the grid shows them (positions under "#", lists and
    dicts as JSON text), the page shown (clamped), the page count and the dataset's row count."""

    frame: pd.DataFrame
    number: int
    pages: int
    rows: int


@dataclass
class Exclusion:
    """The rows with errors taken out of a session's dataset: the version saved without them, how many
    rows went, and the column mapping the check used."""

    saved: Path
    count: int
    mapping: ColumnMapping


class EditorSessions:
    """A `DatasetEditor` per session key, forgotten after `idle_seconds` without use (thread-safe)."""

    def __init__(self, data_root: Path, idle_seconds: float = IDLE_SECONDS, limit: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.data_root = data_root
        self.idle_seconds, self.limit, self.clock = idle_seconds, limit, clock
        self._open: OrderedDict[str, tuple[DatasetEditor, float]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, session: str, path: str | Path) -> DatasetEditor:
        """Load `path` as the session's dataset (replacing the one it edited); EngineError when unreadable."""
        editor = DatasetEditor.open(path, self.data_root)
        with self._lock:
            self._forget_idle()
            self._open.pop(session, None)
            self._open[session] = (editor, self.clock())
            while len(self._open) > self.limit:
                self._open.popitem(last=False)
        return editor

    def get(self, session: str) -> DatasetEditor | None:
        """The session's editor (None when it opened none or it was dropped), marked as just used."""
        with self._lock:
            self._forget_idle()
            entry = self._open.pop(session, None)
            if entry is None:
                return None
            self._open[session] = (entry[0], self.clock())
            return entry[0]

    def sessions(self) -> list[str]:
        """The sessions with an editor open, least recently used first."""
        with self._lock:
            self._forget_idle()
            return list(self._open)

    def page(self, session: str, number: Any, size: int, query: str) -> EditorPage | None:
        """Page `number` of the session's rows matching `query`; None when it has none open."""
        editor = self.get(session)
        if editor is None:
            return None
        frame, pages = editor.page(number, size, query)
        return EditorPage(frame.map(grid_value), page_number(number, pages), pages, editor.rows)

    def edit(self, session: str, change: str, *args: Any) -> int | None:
        """Apply the `EDITS` change named `change` to the session's rows; None when it has none open."""
        editor = self.get(session)
        return None if editor is None else EDITS[change](editor, *args)

    def save(self, session: str) -> Path | None:
        """Save the session's rows as the dataset's next version; None when it has none open."""
        editor = self.get(session)
        return None if editor is None else editor.save()

    def export(self, session: str, folder: str | Path | None = None) -> Path | None:
        """Write the session's rows to `<folder>/<dataset name>.jsonl` (default folder: a new temporary one);
        None when it has none open."""
        editor = self.get(session)
        if editor is None:
            return None
        folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="export-"))
        return editor.export_jsonl(folder / f"{editor.name}.jsonl")

    def _forget_idle(self) -> None:
        """Drop the editors not used for `idle_seconds` (callers hold the lock)."""
        oldest = self.clock() - self.idle_seconds
        for session in [s for s, (_editor, used) in self._open.items() if used < oldest]:
            del self._open[session]
