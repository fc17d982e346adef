"""The studies database: one SQLite file (WAL mode), its schema, and a fresh connection per call.

Each call opens its own connection, so a store can be shared between threads and processes; writers take
the write lock up front and every block is one transaction, committed before the call returns.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from engine.errors import EngineError

DB_NAME = "studies.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    gen_params TEXT NOT NULL DEFAULT '{}',
    criteria TEXT NOT NULL DEFAULT '["terminology","logic","format"]',
    password_hash TEXT,
    seed INTEGER NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    domain TEXT,
    reference TEXT,
    UNIQUE (study_id, position)
);
CREATE TABLE IF NOT EXISTS blinding (
    question_id INTEGER PRIMARY KEY REFERENCES questions(id) ON DELETE CASCADE,
    left_is_adapter INTEGER NOT NULL CHECK (left_is_adapter IN (0, 1))
);
CREATE TABLE IF NOT EXISTS answers (
    question_id INTEGER PRIMARY KEY REFERENCES questions(id) ON DELETE CASCADE,
    side_base_text TEXT NOT NULL,
    side_adapter_text TEXT NOT NULL,
    flagged_identity INTEGER NOT NULL DEFAULT 0,
    generated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS presented (
    question_id INTEGER PRIMARY KEY REFERENCES questions(id) ON DELETE CASCADE,
    text_a TEXT NOT NULL,
    text_b TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE,
    created TEXT NOT NULL,
    UNIQUE (study_id, name)
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
    rater_id INTEGER NOT NULL REFERENCES raters(id) ON DELETE CASCADE,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'both_bad')),
    scores TEXT,
    comment TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    UNIQUE (question_id, rater_id, repeat)
);
CREATE TABLE IF NOT EXISTS skips (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL,
    rater_id INTEGER NOT NULL,
    question_id INTEGER NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    UNIQUE (question_id, rater_id, repeat)
);
CREATE INDEX IF NOT EXISTS votes_by_rater ON votes (study_id, rater_id);
CREATE INDEX IF NOT EXISTS questions_by_study ON questions (study_id, position);
"""


def now() -> str:
    """The current UTC time as stored in the database (ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StudyDatabase:
    """The file, its connections and the lookups that refuse unknown studies, raters and questions;
    the base of `StudyStore` and of its generation, rating and results parts."""

    def __init__(self, path: str | Path) -> None:
        """Open (or create) the database at `path`, or `studies.db` inside a folder."""
        path = Path(path)
        if path.is_dir():
            path = path / DB_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A fresh connection; the block runs in one transaction, committed on exit, rolled back on error.
        Writers take the write lock up front (BEGIN IMMEDIATE) so they wait for each other, never fail."""
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _study_row(self, conn: sqlite3.Connection, study_id: int) -> sqlite3.Row:
        """The study's row; raises `study_not_found`."""
        row = conn.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone()
        if row is None:
            raise EngineError("study_not_found", {"study_id": study_id})
        return row

    def _study_rows(self, study_id: int, sql: str) -> list[dict[str, Any]]:
        """The rows of `sql` (one `?`, the study id) as dicts; raises `study_not_found`."""
        with self._connect() as conn:
            self._study_row(conn, study_id)
            return [dict(r) for r in conn.execute(sql, (study_id,)).fetchall()]

    def _check_rater(self, conn: sqlite3.Connection, study_id: int, rater_id: int) -> sqlite3.Row:
        """The rater's row in this study; raises `study_not_found` or `study_rater_not_found`."""
        row = conn.execute("SELECT * FROM raters WHERE id = ? AND study_id = ?", (rater_id, study_id)).fetchone()
        if row is None:
            self._study_row(conn, study_id)
            raise EngineError("study_rater_not_found", {"rater_id": rater_id, "study_id": study_id})
        return row

    def _check_question(self, conn: sqlite3.Connection, study_id: int, question_id: int) -> sqlite3.Row:
        """The question's row in this study; raises `study_question_not_found`."""
        row = conn.execute("SELECT * FROM questions WHERE id = ? AND study_id = ?",
                           (question_id, study_id)).fetchone()
        if row is None:
            raise EngineError("study_question_not_found", {"question_id": question_id, "study_id": study_id})
        return row
