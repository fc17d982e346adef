"""Editing a dataset's raw rows for the grid: edits, search, undo, and versioned saves (`engine.data.versions`).

`DatasetEditor` holds the rows of one dataset file as a pandas DataFrame of the file's own columns
(object dtype, so nested values such as ShareGPT `conversations` stay Python lists/dicts). Positions
are 1-based everywhere: the numbers a user sees. Every change pushes an undo record that holds only
what changed (old cells, removed rows, inserted positions), never a copy of the whole frame.
"""
from __future__ import annotations

import copy
import json
import math
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from engine.data.cells import cell_text, clean, dedup_key, grid_value, is_empty, is_nested, object_column, stripped
from engine.data.reading import read_rows
from engine.data.versions import dataset_name, save_version, versions
from engine.errors import EngineError, Issue
from engine.system.files import write_text_atomic

UNDO_LIMIT = 50
_HAY = "\x00search"  # hidden, lazily filled column: one lower-cased search string per row (None = stale)
_FEW = 16           # up to this many changed cells in a column are set in place
_SEP = "\x1f"        # between cells in the search string, so a query never spans two cells


def page_number(number: Any, pages: int) -> int:
    """The page shown for a requested `number`: a whole number clamped to 1..`pages`; anything else is page 1."""
    try:
        wanted = int(number)
    except (TypeError, ValueError, OverflowError):
        wanted = 1
    return min(max(1, wanted), pages)


class DatasetEditor:
    """Holds the rows of one dataset (as a pandas DataFrame of the file's own columns), edits them,
    undoes the last changes, and saves versions atomically under a data folder."""

    def __init__(self, rows: list[dict[str, Any]], data_root: str | Path, name: str,
                 source: Path | None = None, issues: list[Issue] | None = None) -> None:
        self.data_root = Path(data_root)
        self.name = name
        self.source = source
        self.issues: list[Issue] = issues or []  # lines that could not be read (they are not kept)
        self._columns: list[str] = list(dict.fromkeys(key for row in rows for key in row))
        data = {col: object_column([row.get(col) for row in rows]) for col in self._columns}
        data[_HAY] = object_column([None] * len(rows))
        self._frame = pd.DataFrame(data)
        self._undo: list[tuple] = []
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path, data_root: str | Path, name: str | None = None) -> "DatasetEditor":
        """Read `path` (any supported file type); raises EngineError when it cannot be read at all."""
        path, data_root = Path(path), Path(data_root)
        issues: list[Issue] = []
        numbered = read_rows(path, issues)
        return cls([row for _number, row in numbered], data_root, name or dataset_name(path, data_root),
                   source=path, issues=issues)

    # -- reading -------------------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """The number of rows."""
        return len(self._frame)

    @property
    def columns(self) -> list[str]:
        """The dataset's column names in first-seen order (a copy)."""
        return list(self._columns)

    def row(self, position: int) -> dict[str, Any]:
        """One row as a dict (missing cells as empty strings)."""
        with self._lock:
            i = self._index(position)
            return {col: clean(self._frame[col].iat[i]) for col in self._columns}

    def page(self, number: Any, size: int = 20, query: str = "") -> tuple[pd.DataFrame, int]:
        """Rows of page `number` (1-based, see `page_number`) among rows matching `query`, and the page count.

        The frame starts with a "#" column: each row's 1-based position in the whole dataset.
        """
        size = max(1, int(size))
        with self._lock:
            if query and query.strip():
                positions = np.flatnonzero(self._matches(query.strip().lower()))
            else:
                positions = None
            total = self.rows if positions is None else len(positions)
            pages = max(1, math.ceil(total / size))
            number = page_number(number, pages)
            start = (number - 1) * size
            chosen = np.arange(start, min(start + size, total)) if positions is None \
                else positions[start:start + size]
            frame = self._frame.iloc[chosen][self._columns].copy()
            frame.insert(0, "#", (chosen + 1).astype(int))
            return frame.reset_index(drop=True), pages

    def _matches(self, needle: str) -> np.ndarray:
        hay = self._frame[_HAY]
        stale = hay.isna().to_numpy()
        if stale.any():
            idx = np.flatnonzero(stale)
            sub = self._frame.iloc[idx]
            texts = [_SEP.join(cell_text(v) for v in cells).lower()
                     for cells in zip(*(sub[col].to_numpy() for col in self._columns))] \
                if self._columns else [""] * len(idx)
            values = hay.to_numpy(dtype=object, copy=True)
            values[idx] = np.array(texts, dtype=object)
            self._frame[_HAY] = object_column(list(values), self._frame.index)
            hay = self._frame[_HAY]
        return np.fromiter((needle in text for text in hay.to_numpy()), dtype=bool, count=len(hay))

    def to_records(self) -> list[dict[str, Any]]:
        """Rows as dicts in column order, missing cells as "" (nested values are shared: read only)."""
        with self._lock:
            return list(self._records())

    def _records(self) -> Iterator[dict[str, Any]]:
        arrays = [self._frame[col].to_numpy() for col in self._columns]
        for cells in zip(*arrays):
            yield {col: clean(value) for col, value in zip(self._columns, cells)}
        if not self._columns:
            for _ in range(self.rows):
                yield {}

    def to_jsonl(self) -> str:
        """The rows as JSON Lines text (missing cells as "", values JSON cannot encode as their `str()`)."""
        return "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in self._records())

    # -- editing -------------------------------------------------------------------------------

    def update_row(self, position: int, values: dict[str, Any]) -> None:
        """Set some cells of one row. A JSON string given for a cell that holds a list/dict is parsed."""
        with self._lock:
            i = self._index(position)
            self._check_columns(values)
            changes: dict[str, list[tuple[int, Any]]] = {}
            for col, value in values.items():
                old = self._frame[col].iat[i]
                if is_nested(old) and isinstance(value, str):
                    try:
                        parsed = json.loads(value)
                    except ValueError:
                        parsed = None
                    if is_nested(parsed):
                        value = parsed
                if value is old or (type(value) is type(old) and value == old):
                    continue
                changes[col] = [(i, value)]
            if changes:
                self._push(("cells", self._set_cells(changes)))

    def apply_grid(self, records: list[dict[str, Any]]) -> int:
        """Apply the grid's rows (each with its position under "#", cells as `grid_value` shows them): a cell
        that still reads as before is left alone; returns how many rows changed (one undo step each)."""
        changed = 0
        with self._lock:
            for record in records:
                record = dict(record)
                position = record.pop("#", None)
                current = self.row(position)
                values = {k: v for k, v in record.items() if grid_value(current.get(k)) != v}
                if values:
                    self.update_row(position, values)
                    changed += 1
        return changed

    def add_row(self, values: dict[str, Any] | None = None) -> int:
        """Append a row (unnamed cells empty); returns its position."""
        with self._lock:
            values = values or {}
            self._check_columns(values)
            row = {col: values.get(col, "") for col in self._columns}
            position = self.rows + 1
            self._insert(np.array([position - 1]), self._row_frame([row]))
            self._push(("delete", np.array([position - 1])))
            return position

    def duplicate_row(self, position: int) -> int:
        """Insert a copy right after the row; returns the copy's position."""
        with self._lock:
            i = self._index(position)
            row = {col: copy.deepcopy(self._frame[col].iat[i]) for col in self._columns}
            self._insert(np.array([i + 1]), self._row_frame([row]))
            self._push(("delete", np.array([i + 1])))
            return i + 2

    def delete_rows(self, positions: list[int]) -> int:
        """Remove the rows at 1-based `positions` as one undo step; returns how many were removed.

        Raises EngineError `row_out_of_range` for a position that is not a row.
        """
        with self._lock:
            idx = np.array(sorted({self._index(p) for p in positions}), dtype=int)
            return self._delete_recorded(idx)

    def remove_exact_duplicates(self) -> int:
        """Remove rows equal to an earlier row in every cell; returns how many were removed."""
        with self._lock:
            seen: set[tuple] = set()
            dup = []
            arrays = [self._frame[col].to_numpy() for col in self._columns]
            for i, cells in enumerate(zip(*arrays)):
                key = tuple(dedup_key(v) for v in cells)
                if key in seen:
                    dup.append(i)
                seen.add(key)
            return self._delete_recorded(np.array(dup, dtype=int))

    def strip_whitespace(self) -> int:
        """Strip leading/trailing whitespace in text cells and inside nested values; returns cells changed."""
        with self._lock:
            changes: dict[str, list[tuple[int, Any]]] = {}
            for col in self._columns:
                for i, value in enumerate(self._frame[col].to_numpy()):
                    if isinstance(value, str) or is_nested(value):
                        new = stripped(value)
                        if new != value:
                            changes.setdefault(col, []).append((i, new))
            if not changes:
                return 0
            old = self._set_cells(changes)
            self._push(("cells", old))
            return sum(len(v) for v in old.values())

    def drop_empty_rows(self) -> int:
        """Remove rows whose every cell is empty, whitespace or missing; returns how many."""
        with self._lock:
            arrays = [self._frame[col].to_numpy() for col in self._columns]
            empty = [i for i, cells in enumerate(zip(*arrays)) if all(is_empty(v) for v in cells)]
            return self._delete_recorded(np.array(empty, dtype=int))

    def undo(self) -> bool:
        """Revert the last change; False when there is nothing to undo."""
        with self._lock:
            if not self._undo:
                return False
            record = self._undo.pop()
            if record[0] == "cells":
                self._set_cells(record[1])
            elif record[0] == "delete":
                self._delete(record[1])
            else:  # "insert"
                self._insert(record[1], record[2])
            return True

    # -- saving --------------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """The folder under `data_root` that holds this dataset's saved versions."""
        return self.data_root / self.name

    def versions(self) -> list[Path]:
        """Saved versions, oldest first."""
        return versions(self.folder)

    def save(self) -> Path:
        """Write the next version (never overwriting one) and refresh latest.jsonl; returns the version."""
        with self._lock:
            return save_version(self.folder, self.to_jsonl())

    def export_jsonl(self, path: str | Path) -> Path:
        """Write the rows as JSONL to `path` (atomically; no version is saved); returns the path."""
        path = Path(path)
        with self._lock:
            write_text_atomic(path, self.to_jsonl())
        return path

    # -- internals -----------------------------------------------------------------------------

    def _index(self, position: Any) -> int:
        """0-based index of a 1-based position, or EngineError row_out_of_range."""
        try:
            number = int(position)
            valid = number == position or str(number) == str(position).strip()
        except (TypeError, ValueError):
            number, valid = 0, False
        if not valid or not 1 <= number <= self.rows:
            raise EngineError("row_out_of_range", {"position": position, "rows": self.rows})
        return number - 1

    def _check_columns(self, values: dict[str, Any]) -> None:
        for col in values:
            if col not in self._columns:
                raise EngineError("column_unknown", {"column": col, "columns": ", ".join(self._columns)})

    def _push(self, record: tuple) -> None:
        self._undo.append(record)
        del self._undo[:-UNDO_LIMIT]

    def _row_frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        data = {col: object_column([row.get(col) for row in rows]) for col in self._columns}
        data[_HAY] = object_column([None] * len(rows))
        return pd.DataFrame(data)

    def _set_cells(self, changes: dict[str, list[tuple[int, Any]]]) -> dict[str, list[tuple[int, Any]]]:
        """Apply {column: [(index, value)]}; returns the same shape holding the old values."""
        old: dict[str, list[tuple[int, Any]]] = {}
        touched: set[int] = set()
        for col, cells in changes.items():
            j = self._frame.columns.get_loc(col)
            if len(cells) <= _FEW:  # a few cells: set in place (no column rebuild)
                old[col] = [(i, self._frame.iat[i, j]) for i, _v in cells]
                for i, value in cells:
                    self._frame.iat[i, j] = value
            else:
                values = self._frame[col].to_numpy(dtype=object, copy=True)
                old[col] = [(i, values[i]) for i, _v in cells]
                for i, value in cells:
                    values[i] = value
                self._frame[col] = object_column(list(values), self._frame.index)
            touched.update(i for i, _v in cells)
        if len(touched) <= _FEW:
            j = self._frame.columns.get_loc(_HAY)
            for i in touched:
                self._frame.iat[i, j] = None
        else:
            hay = self._frame[_HAY].to_numpy(dtype=object, copy=True)
            hay[list(touched)] = None
            self._frame[_HAY] = object_column(list(hay), self._frame.index)
        return old

    def _delete(self, idx: np.ndarray) -> pd.DataFrame:
        """Remove rows at 0-based `idx` (sorted); returns them."""
        keep = np.ones(self.rows, dtype=bool)
        keep[idx] = False
        removed = self._frame.iloc[idx]
        self._frame = self._frame.iloc[keep].reset_index(drop=True)
        return removed

    def _delete_recorded(self, idx: np.ndarray) -> int:
        if not len(idx):
            return 0
        removed = self._delete(idx)
        self._push(("insert", idx, removed))
        return len(idx)

    def _insert(self, idx: np.ndarray, rows: pd.DataFrame) -> None:
        """Put `rows` back so that they end up at 0-based `idx` (sorted) of the grown frame."""
        total = self.rows + len(idx)
        kept = np.setdiff1d(np.arange(total), idx, assume_unique=True)
        both = pd.concat([self._frame, rows], ignore_index=True)
        order = np.empty(total, dtype=int)
        order[np.concatenate([kept, idx])] = np.arange(total)
        self._frame = both.iloc[order].reset_index(drop=True)
