"""Blind side-by-side studies: domain experts judge base vs adapter answers without knowing which is which.

One SQLite file (`studies.db`, WAL mode) holds everything. Each call opens its own connection, so a
store can be shared between threads and processes, and every vote is committed before `vote` returns.

Blinding: when a study is created, each question gets a side (adapter on the left or not) from
`random.Random(seed)`, balanced: exactly half of the questions (the odd one decided by the same
generator) show the adapter on the left. The key lives only in the `blinding` table. Generated pairs
are kept twice: `answers` (base text, adapter text: for unblinding) and `presented` (text shown as A,
text shown as B). `next_item`, the raters' view, reads `presented` and never `answers` or `blinding`;
a rater sees the prompt, answer A, answer B and progress, nothing about the models.

Votes are stored as shown ("A", "B", "tie", "both_bad", scores per shown side) and unblinded only by
`results` and the exports. Optional self-consistency repeats show a rater some already-judged items
again with A and B swapped (stored with repeat=True).
"""
from __future__ import annotations

import json
import math
import random
import secrets
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.errors import EngineError
from engine.study.passwords import hash_password, verify_password
from engine.study.questions import identity_flags, load_questions, reveals_identity, text_or_none
from engine.study.results import StudyResults

__all__ = ["StudyStore", "RatingItem", "balanced_sides", "identity_flags", "load_questions", "reveals_identity"]

DB_NAME = "studies.db"
DEFAULT_CRITERIA = ("terminology", "logic", "format")
CHOICES = ("A", "B", "tie", "both_bad")
REPEAT_GAP = 3  # a repeat is shown only after this many other judgements since the original (when possible)

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


GENERATION_BATCH = 4  # questions per mixed base/adapter batch when pre-generating a study


@dataclass(frozen=True)
class RatingItem:
    """What a rater sees: the question, answer A, answer B and progress; nothing about the models.

    `repeat` is True for a self-consistency repeat; pass it back to `vote`/`skip` (do not show it).
    """

    study_id: int
    question_id: int
    prompt: str
    answer_a: str
    answer_b: str
    criteria: tuple[str, ...]
    done: int
    total: int
    repeat: bool = False


def balanced_sides(count: int, seed: int) -> list[bool]:
    """left_is_adapter per position: exactly count//2 or count//2 + 1 True (the odd one by the generator),
    shuffled with `random.Random(seed)`; the same seed gives the same list."""
    rng = random.Random(seed)
    adapter_left = math.floor(count / 2) + (count % 2 if rng.random() < 0.5 else 0)
    sides = [True] * adapter_left + [False] * (count - adapter_left)
    rng.shuffle(sides)
    return sides


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StudyStore(StudyResults):
    """All studies in one SQLite file. Safe to share between threads: one connection per call."""

    def __init__(self, path: str | Path) -> None:
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

    # connections ---------------------------------------------------------------------------------
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
        row = conn.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone()
        if row is None:
            raise EngineError("study_not_found", {"study_id": study_id})
        return row

    def _check_rater(self, conn: sqlite3.Connection, study_id: int, rater_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM raters WHERE id = ? AND study_id = ?", (rater_id, study_id)).fetchone()
        if row is None:
            self._study_row(conn, study_id)
            raise EngineError("study_rater_not_found", {"rater_id": rater_id, "study_id": study_id})
        return row

    def _check_question(self, conn: sqlite3.Connection, study_id: int, question_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM questions WHERE id = ? AND study_id = ?",
                           (question_id, study_id)).fetchone()
        if row is None:
            raise EngineError("study_question_not_found", {"question_id": question_id, "study_id": study_id})
        return row

    # studies -------------------------------------------------------------------------------------
    def create_study(self, name: str, questions: list[dict[str, Any]], run_dir: str | Path,
                     gen_params: dict[str, Any] | None = None, criteria: list[str] | None = None,
                     password: str | None = None, seed: int | None = None, repeats: int = 0) -> int:
        """A new study with its questions and its balanced blinding key; returns the study id."""
        from engine.chat.inference import GenParams

        name = (name or "").strip()
        if not name:
            raise EngineError("study_name_empty")
        gen_params = dict(gen_params or {})
        try:
            GenParams(**gen_params)
        except TypeError:
            known = set(GenParams.__dataclass_fields__)
            raise EngineError("study_bad_gen_params",
                              {"keys": ", ".join(sorted(set(gen_params) - known)) or "?",
                               "known": ", ".join(sorted(known))}) from None
        criteria = [str(c).strip() for c in (DEFAULT_CRITERIA if criteria is None else criteria)]
        if not criteria or any(not c for c in criteria) or len(set(criteria)) != len(criteria):
            raise EngineError("study_bad_criteria", {"criteria": ", ".join(criteria)})
        if not isinstance(repeats, int) or repeats < 0:
            raise EngineError("study_bad_repeats", {"repeats": repeats})
        if not questions:
            raise EngineError("study_no_questions")
        cleaned = []
        for number, question in enumerate(questions, start=1):
            prompt = text_or_none(question.get("prompt"))
            if prompt is None:
                raise EngineError("study_question_empty", {"row": number}, hint="hint_fix_rows")
            cleaned.append((prompt, text_or_none(question.get("domain")), text_or_none(question.get("reference"))))
        seed = secrets.randbits(31) if seed is None else int(seed)
        sides = balanced_sides(len(cleaned), seed)
        with self._connect(write=True) as conn:
            study_id = conn.execute(
                "INSERT INTO studies (name, created, run_dir, gen_params, criteria, password_hash, seed, repeats) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, _now(), str(run_dir), json.dumps(gen_params, ensure_ascii=False),
                 json.dumps(criteria, ensure_ascii=False), hash_password(password) if password else None,
                 seed, repeats)).lastrowid
            for position, ((prompt, domain, reference), left_is_adapter) in enumerate(zip(cleaned, sides), start=1):
                qid = conn.execute("INSERT INTO questions (study_id, position, prompt, domain, reference) "
                                   "VALUES (?, ?, ?, ?, ?)", (study_id, position, prompt, domain, reference)).lastrowid
                conn.execute("INSERT INTO blinding (question_id, left_is_adapter) VALUES (?, ?)",
                             (qid, int(left_is_adapter)))
        return study_id

    def studies(self) -> list[dict[str, Any]]:
        """Every study, newest first (no blinding key)."""
        with self._connect() as conn:
            ids = [r["id"] for r in conn.execute("SELECT id FROM studies ORDER BY id DESC")]
        return [self.study(i) for i in ids]

    def study(self, study_id: int) -> dict[str, Any]:
        """A study's settings and counts (no blinding key, no password hash)."""
        with self._connect() as conn:
            row = self._study_row(conn, study_id)
            counts = conn.execute(
                "SELECT (SELECT COUNT(*) FROM questions WHERE study_id = :s) AS questions, "
                "(SELECT COUNT(*) FROM answers JOIN questions q ON q.id = question_id WHERE q.study_id = :s) "
                "AS generated, (SELECT COUNT(*) FROM raters WHERE study_id = :s) AS raters, "
                "(SELECT COUNT(*) FROM votes WHERE study_id = :s) AS votes", {"s": study_id}).fetchone()
        return {"id": row["id"], "name": row["name"], "created": row["created"], "run_dir": row["run_dir"],
                "gen_params": json.loads(row["gen_params"]), "criteria": json.loads(row["criteria"]),
                "has_password": row["password_hash"] is not None, "seed": row["seed"], "repeats": row["repeats"],
                **dict(counts)}

    def questions(self, study_id: int) -> list[dict[str, Any]]:
        with self._connect() as conn:
            self._study_row(conn, study_id)
            rows = conn.execute("SELECT id, position, prompt, domain, reference FROM questions "
                                "WHERE study_id = ? ORDER BY position", (study_id,)).fetchall()
        return [dict(r) for r in rows]

    def answer_pairs(self, study_id: int) -> list[dict[str, Any]]:
        """Each generated question with its reference and both answers, unblinded (organiser only)."""
        with self._connect() as conn:
            self._study_row(conn, study_id)
            rows = conn.execute("SELECT q.id AS question_id, q.prompt, q.domain, q.reference, "
                                "a.side_base_text AS base, a.side_adapter_text AS adapter FROM questions q "
                                "JOIN answers a ON a.question_id = q.id WHERE q.study_id = ? ORDER BY q.position",
                                (study_id,)).fetchall()
        return [dict(r) for r in rows]

    def flagged(self, study_id: int) -> list[dict[str, Any]]:
        """Questions whose generated answers may reveal a model's identity (for the organiser only)."""
        with self._connect() as conn:
            self._study_row(conn, study_id)
            rows = conn.execute("SELECT q.id, q.position, q.prompt FROM questions q JOIN answers a "
                                "ON a.question_id = q.id WHERE q.study_id = ? AND a.flagged_identity "
                                "ORDER BY q.position", (study_id,)).fetchall()
        return [dict(r) for r in rows]

    def check_password(self, study_id: int, password: str | None) -> bool:
        """True when the study has no password or `password` is right."""
        with self._connect() as conn:
            stored = self._study_row(conn, study_id)["password_hash"]
        return stored is None or verify_password(password or "", stored)

    # generation ----------------------------------------------------------------------------------
    def pending_generation(self, study_id: int) -> list[int]:
        """Ids of the questions that have no stored answers yet, in order."""
        with self._connect() as conn:
            self._study_row(conn, study_id)
            rows = conn.execute("SELECT q.id FROM questions q LEFT JOIN answers a ON a.question_id = q.id "
                                "WHERE q.study_id = ? AND a.question_id IS NULL ORDER BY q.position",
                                (study_id,)).fetchall()
        return [r["id"] for r in rows]

    def store_answers(self, question_id: int, base: str, adapter: str) -> bool:
        """Keep one generated pair (and its A/B presentation); returns whether it reveals a model's identity."""
        flagged = reveals_identity(base) or reveals_identity(adapter)
        with self._connect(write=True) as conn:
            key = conn.execute("SELECT left_is_adapter FROM blinding WHERE question_id = ?", (question_id,)).fetchone()
            if key is None:
                raise EngineError("study_question_not_found", {"question_id": question_id, "study_id": "-"})
            if conn.execute("SELECT 1 FROM votes WHERE question_id = ? LIMIT 1", (question_id,)).fetchone():
                raise EngineError("study_answers_locked", {"question_id": question_id})
            conn.execute("INSERT OR REPLACE INTO answers (question_id, side_base_text, side_adapter_text, "
                         "flagged_identity, generated_at) VALUES (?, ?, ?, ?, ?)",
                         (question_id, base, adapter, int(flagged), _now()))
            a, b = (adapter, base) if key["left_is_adapter"] else (base, adapter)
            conn.execute("INSERT OR REPLACE INTO presented (question_id, text_a, text_b) VALUES (?, ?, ?)",
                         (question_id, a, b))
        return flagged

    def generate(self, study_id: int, chat_model: Any, progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> int:
        """Generate base and adapter answers for every pending question.

        With a `compare_batch` method the chat model answers GENERATION_BATCH questions per mixed batch
        (both sides in one pass); otherwise `compare` answers one question at a time. Each pair is
        stored as soon as it exists, so an interrupted generation resumes where it stopped.
        `progress(done, total)` is called after each batch; returns how many pairs were generated.
        """
        from engine.chat.inference import GenParams

        info = self.study(study_id)
        params = GenParams(**info["gen_params"])
        prompts = {q["id"]: q["prompt"] for q in self.questions(study_id)}
        pending = self.pending_generation(study_id)
        total, done = len(prompts), len(prompts) - len(pending)
        if progress:
            progress(done, total)
        generated = 0
        size = GENERATION_BATCH if hasattr(chat_model, "compare_batch") else 1
        for start in range(0, len(pending), size):
            if should_stop and should_stop():
                break
            chunk = pending[start:start + size]
            conversations = [[{"role": "user", "content": prompts[q]}] for q in chunk]
            if size > 1:
                pairs = chat_model.compare_batch(info["run_dir"], conversations, params)
            else:
                pairs = [chat_model.compare(info["run_dir"], conversations[0], params)]
            for question_id, pair in zip(chunk, pairs):
                self.store_answers(question_id, pair.base, pair.adapter)
            generated += len(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
        return generated

    # rating --------------------------------------------------------------------------------------
    def add_rater(self, study_id: int, name: str) -> int:
        """The rater called `name` in this study (created on first use; case and outer spaces ignored)."""
        name = " ".join((name or "").split())
        if not name:
            raise EngineError("study_rater_name_empty")
        with self._connect(write=True) as conn:
            self._study_row(conn, study_id)
            conn.execute("INSERT OR IGNORE INTO raters (study_id, name, created) VALUES (?, ?, ?)",
                         (study_id, name, _now()))
            return conn.execute("SELECT id FROM raters WHERE study_id = ? AND name = ?", (study_id, name)).fetchone()[0]

    def raters(self, study_id: int) -> list[dict[str, Any]]:
        with self._connect() as conn:
            self._study_row(conn, study_id)
            rows = conn.execute("SELECT r.id, r.name, (SELECT COUNT(*) FROM votes v WHERE v.rater_id = r.id) "
                                "AS votes FROM raters r WHERE r.study_id = ? ORDER BY r.id", (study_id,)).fetchall()
        return [dict(r) for r in rows]

    @staticmethod
    def _plan(seed: int, rater_id: int, question_ids: list[int], repeats: int) -> tuple[list[int], list[int]]:
        """A rater's own question order and the questions they will see again (reproducible per rater)."""
        rng = random.Random(f"{seed}:{rater_id}")
        order = list(question_ids)
        rng.shuffle(order)
        count = min(repeats, len(order))
        # taken from early in the rater's order, so that other items come between an item and its repeat
        pool = order[:len(order) - REPEAT_GAP] if len(order) - REPEAT_GAP >= count else order
        return order, rng.sample(pool, count)

    def next_item(self, study_id: int, rater_id: int) -> RatingItem | None:
        """The next item for this rater, or None when they have judged everything generated so far.

        Unjudged items come in the rater's own random order; skipped ones come back after the others;
        a repeat (sides swapped) appears once REPEAT_GAP other items were judged since the original.
        Reads only studies, raters, questions, presented, votes and skips: never the key or `answers`.
        """
        with self._connect() as conn:
            study = self._study_row(conn, study_id)
            self._check_rater(conn, study_id, rater_id)
            rows = conn.execute("SELECT q.id, q.prompt, p.text_a, p.text_b FROM questions q "
                                "LEFT JOIN presented p ON p.question_id = q.id WHERE q.study_id = ? "
                                "ORDER BY q.position", (study_id,)).fetchall()
            votes = {(r["question_id"], bool(r["repeat"])): r["id"] for r in conn.execute(
                "SELECT id, question_id, repeat FROM votes WHERE study_id = ? AND rater_id = ?", (study_id, rater_id))}
            skips = {(r["question_id"], bool(r["repeat"])): r["seq"] for r in conn.execute(
                "SELECT seq, question_id, repeat FROM skips WHERE study_id = ? AND rater_id = ?",
                (study_id, rater_id))}
        by_id = {r["id"]: r for r in rows}
        ready = {r["id"] for r in rows if r["text_a"] is not None}
        order, again = self._plan(study["seed"], rater_id, [r["id"] for r in rows], study["repeats"])
        originals = [(q, False) for q in order if q in ready and (q, False) not in votes]
        fresh = [item for item in originals if item not in skips]
        original_ids = sorted(i for (q, rep), i in votes.items() if not rep)

        def due(q: int) -> bool:
            if (q, False) not in votes or (q, True) in votes or q not in ready:
                return False
            since = sum(1 for i in original_ids if i > votes[(q, False)])
            return since >= REPEAT_GAP or not fresh

        repeats = sorted(((q, True) for q in again if due(q)), key=lambda item: votes[(item[0], False)])
        queue = [item for item in repeats if item not in skips] + fresh
        queue += sorted((item for item in repeats + originals if item in skips), key=skips.get)
        if not queue:
            return None
        question_id, repeat = queue[0]
        row = by_id[question_id]
        a, b = (row["text_b"], row["text_a"]) if repeat else (row["text_a"], row["text_b"])
        return RatingItem(study_id=study_id, question_id=question_id, prompt=row["prompt"], answer_a=a, answer_b=b,
                          criteria=tuple(json.loads(study["criteria"])), done=len(votes),
                          total=len(rows) + len(again), repeat=repeat)

    def skip(self, study_id: int, rater_id: int, question_id: int, repeat: bool = False) -> None:
        """Put an item at the back of this rater's queue; it comes back after the unseen ones."""
        with self._connect(write=True) as conn:
            self._check_rater(conn, study_id, rater_id)
            self._check_question(conn, study_id, question_id)
            conn.execute("INSERT OR REPLACE INTO skips (study_id, rater_id, question_id, repeat) VALUES (?, ?, ?, ?)",
                         (study_id, rater_id, question_id, int(bool(repeat))))

    def _check_scores(self, scores: dict | None, criteria: list[str]) -> str | None:
        """Scores as {"A": {criterion: 1-5}, "B": {...}} for the sides as shown; returns the JSON to store."""
        if not scores:
            return None
        if not isinstance(scores, dict) or set(scores) - {"A", "B"}:
            raise EngineError("study_bad_scores", {"sides": ", ".join(map(str, scores))})
        clean: dict[str, dict[str, int]] = {}
        for side, values in scores.items():
            clean[side] = {}
            for criterion, value in (values or {}).items():
                if criterion not in criteria:
                    raise EngineError("study_unknown_criterion", {"criterion": criterion,
                                                                  "criteria": ", ".join(criteria)})
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
                        or not 1 <= value <= 5:
                    raise EngineError("study_bad_score", {"criterion": criterion, "value": value})
                clean[side][criterion] = int(value)
        return json.dumps(clean, ensure_ascii=False)

    def vote(self, study_id: int, rater_id: int, question_id: int, choice: str, scores: dict | None = None,
             comment: str = "", repeat: bool = False) -> int:
        """Record (or update) a judgement as shown: choice in A/B/tie/both_bad, optional 1-5 scores per shown
        side and criterion. Committed before returning; returns the vote id."""
        if choice not in CHOICES:
            raise EngineError("study_bad_choice", {"choice": choice, "choices": ", ".join(CHOICES)})
        with self._connect(write=True) as conn:
            study = self._study_row(conn, study_id)
            self._check_rater(conn, study_id, rater_id)
            self._check_question(conn, study_id, question_id)
            if conn.execute("SELECT 1 FROM presented WHERE question_id = ?", (question_id,)).fetchone() is None:
                raise EngineError("study_not_generated", {"question_id": question_id}, hint="hint_study_generate")
            stored_scores = self._check_scores(scores, json.loads(study["criteria"]))
            row = conn.execute(
                "INSERT INTO votes (study_id, question_id, rater_id, choice, scores, comment, created, repeat) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (question_id, rater_id, repeat) DO UPDATE SET "
                "choice = excluded.choice, scores = excluded.scores, comment = excluded.comment, "
                "created = excluded.created RETURNING id",
                (study_id, question_id, rater_id, choice, stored_scores, comment or "", _now(),
                 int(bool(repeat)))).fetchone()
            conn.execute("DELETE FROM skips WHERE question_id = ? AND rater_id = ? AND repeat = ?",
                         (question_id, rater_id, int(bool(repeat))))
        return row[0]
