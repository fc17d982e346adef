"""The studies database: one SQLite file (WAL mode), its schema, and a fresh connection per call.

Each call opens its own connection, so a store can be shared between threads and processes; writers take
the write lock up front and every block is one transaction, committed before the call returns. A file made
with an earlier schema is brought up to date when it is opened (`migrate`).

A study compares two sides: `run_dir` is the candidate's adapter folder, `baseline_dir` the baseline's (NULL: the
base model); the answers' columns keep the names `side_base_text` (baseline) and `side_adapter_text` (candidate).

A changed vote is a new row: `latest_votes` holds only each rater's latest vote per (question, repeat), and
everything that counts reads it; the superseded rows stay in `votes`.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from engine.errors import EngineError

DB_NAME = "studies.db"

STUDY_STATES = ("draft", "open", "paused", "closed")

VOTES_TABLE = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
    rater_id INTEGER NOT NULL REFERENCES raters(id) ON DELETE CASCADE,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'both_bad')),
    scores TEXT,
    comment TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0
);
"""

TABLES = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    baseline_dir TEXT,
    gen_params TEXT NOT NULL DEFAULT '{}',
    criteria TEXT NOT NULL DEFAULT '["terminology","logic","format"]',
    password_hash TEXT,
    seed INTEGER NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'open',
    lang TEXT NOT NULL DEFAULT 'en',
    show_reference INTEGER NOT NULL DEFAULT 0
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
    domain TEXT,
    token_hash TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_active TEXT,
    UNIQUE (study_id, name)
);
""" + VOTES_TABLE + """CREATE TABLE IF NOT EXISTS skips (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL,
    rater_id INTEGER NOT NULL,
    question_id INTEGER NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    UNIQUE (question_id, rater_id, repeat)
);
"""

# made after the migration, so that the columns they name exist in files from before
INDEXES = """
CREATE INDEX IF NOT EXISTS votes_by_judgement ON votes (study_id, rater_id, question_id, repeat, id);
CREATE UNIQUE INDEX IF NOT EXISTS raters_by_token ON raters (token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS questions_by_study ON questions (study_id, position);
CREATE VIEW IF NOT EXISTS latest_votes AS SELECT * FROM votes v WHERE v.id = (
    SELECT MAX(w.id) FROM votes w WHERE w.study_id = v.study_id AND w.rater_id = v.rater_id
    AND w.question_id = v.question_id AND w.repeat = v.repeat);
"""

# columns added since the first schema: (table, column, definition) for files made before them
ADDED_COLUMNS = (
    ("studies", "state", "TEXT NOT NULL DEFAULT 'open'"),
    ("studies", "lang", "TEXT NOT NULL DEFAULT 'en'"),
    ("studies", "show_reference", "INTEGER NOT NULL DEFAULT 0"),
    ("studies", "baseline_dir", "TEXT"),
    ("raters", "domain", "TEXT"),
    ("raters", "token_hash", "TEXT"),
    ("raters", "revoked", "INTEGER NOT NULL DEFAULT 0"),
    ("raters", "last_active", "TEXT"),
)
VOTE_COLUMNS = "id, study_id, question_id, rater_id, choice, scores, comment, created, repeat"


def _outdated(conn: sqlite3.Connection) -> tuple[list[tuple[str, str, str]], bool]:
    """What a file made with an earlier schema lacks: its missing columns, and whether `votes` still has the
    old one-vote-per-item constraint."""
    missing = [(table, column, definition) for table, column, definition in ADDED_COLUMNS
               if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}]
    constrained = any(row[3] == "u" for row in conn.execute("PRAGMA index_list(votes)"))
    return missing, constrained


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a file made with an earlier schema up to date, in one transaction: add the missing columns and
    rebuild `votes` without its old one-vote-per-item constraint (a changed vote is now a new row), keeping ids."""
    if _outdated(conn) == ([], False):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        missing, constrained = _outdated(conn)  # again, under the write lock: another process may have done it
        for table, column, definition in missing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        if constrained:
            conn.execute(VOTES_TABLE.replace("IF NOT EXISTS votes", "votes_rebuilt"))
            conn.execute(f"INSERT INTO votes_rebuilt ({VOTE_COLUMNS}) SELECT {VOTE_COLUMNS} FROM votes ORDER BY id")
            conn.execute("UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'votes') "
                         "WHERE name = 'votes_rebuilt' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'votes')")
            conn.execute("DROP TABLE votes")
            conn.execute("ALTER TABLE votes_rebuilt RENAME TO votes")  # ids never handed out twice
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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
            conn.executescript(TABLES)
            migrate(conn)
            conn.executescript(INDEXES)
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
