"""Rating a blind study: raters, each rater's own order of items, skips, self-consistency repeats and votes.

The raters' view (`next_item`) reads only studies, raters, questions, presented, votes and skips: never the
blinding key or the unblinded `answers`. Votes are stored as shown ("A", "B", "tie", "both_bad", scores per
shown side). A part of `StudyStore` (it uses the store's connections).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError
from engine.study.database import StudyDatabase, now

CHOICES = ("A", "B", "tie", "both_bad")
REPEAT_GAP = 3  # a repeat is shown only after this many other judgements since the original (when possible)


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


class StudyRating(StudyDatabase):
    """The rating part of `StudyStore`: raters, the next item for a rater, skips and votes."""

    def add_rater(self, study_id: int, name: str) -> int:
        """The rater called `name` in this study (created on first use; case and outer spaces ignored)."""
        name = " ".join((name or "").split())
        if not name:
            raise EngineError("study_rater_name_empty")
        with self._connect(write=True) as conn:
            self._study_row(conn, study_id)
            conn.execute("INSERT OR IGNORE INTO raters (study_id, name, created) VALUES (?, ?, ?)",
                         (study_id, name, now()))
            return conn.execute("SELECT id FROM raters WHERE study_id = ? AND name = ?", (study_id, name)).fetchone()[0]

    def raters(self, study_id: int) -> list[dict[str, Any]]:
        """The study's raters (id, name, how many votes), in the order they joined."""
        return self._study_rows(study_id, "SELECT r.id, r.name, "
                                          "(SELECT COUNT(*) FROM votes v WHERE v.rater_id = r.id) AS votes "
                                          "FROM raters r WHERE r.study_id = ? ORDER BY r.id")

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
                (study_id, question_id, rater_id, choice, stored_scores, comment or "", now(),
                 int(bool(repeat)))).fetchone()
            conn.execute("DELETE FROM skips WHERE question_id = ? AND rater_id = ? AND repeat = ?",
                         (question_id, rater_id, int(bool(repeat))))
        return row[0]
