"""Rating a blind study: each rater's own order of items, going back, skips, self-consistency repeats and votes.

The raters' view (`next_item`, `previous_item`) reads only studies, raters, questions, presented, votes and
skips: never the blinding key or the unblinded `answers`. Votes are stored as shown ("A", "B", "tie",
"both_bad", scores per shown side); a changed vote is a new row that supersedes the earlier one. Rating is
allowed only while the study is open. A part of `StudyStore` (it uses the store's connections).
"""
from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from typing import Any, NamedTuple

from engine.errors import EngineError
from engine.study.database import StudyDatabase, now

CHOICES = ("A", "B", "tie", "both_bad")
REPEAT_GAP = 3  # a repeat is shown only after this many other judgements since the original (when possible)
MAX_COMMENT = 4000  # characters in a rater's comment (a changed vote keeps the earlier row, so each one counts)


class _RaterView(NamedTuple):
    """What a rater's items are made from: the study row, its questions with their presented pairs by id (in
    order), and the id of the rater's first vote on each (question_id, repeat) they judged."""

    study: sqlite3.Row
    questions: dict[int, sqlite3.Row]
    judged: dict[tuple[int, bool], int]


@dataclass(frozen=True)
class RatingItem:
    """What a rater sees: the question, answer A, answer B and progress; nothing about the models.

    `repeat` is True for a self-consistency repeat; pass it back to `vote`/`skip` (do not show it).
    `reference` is the question's reference answer, only when the study shows references; `given` is the
    rater's latest vote on this item (`{"choice", "scores", "comment"}`), set only by `previous_item`.
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
    reference: str | None = None
    given: dict | None = None


class StudyRating(StudyDatabase):
    """The rating part of `StudyStore`: raters, the next and the previous item for a rater, skips and votes."""

    def raters(self, study_id: int) -> list[dict[str, Any]]:
        """The study's raters (id, name, how many items they judged), in the order they were invited."""
        return self._study_rows(study_id, "SELECT r.id, r.name, "
                                          "(SELECT COUNT(*) FROM latest_votes v WHERE v.rater_id = r.id) AS votes "
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

    def _rater_view(self, conn: sqlite3.Connection, study_id: int, rater_id: int) -> _RaterView:
        """The study, its presented pairs, and when the rater first judged each item they judged.
        Reads only studies, raters, questions, presented and votes: never the key or `answers`."""
        study = self._study_row(conn, study_id)
        self._check_rater(conn, study_id, rater_id)
        rows = conn.execute("SELECT q.id, q.prompt, q.reference, p.text_a, p.text_b FROM questions q "
                            "LEFT JOIN presented p ON p.question_id = q.id WHERE q.study_id = ? "
                            "ORDER BY q.position", (study_id,)).fetchall()
        judged = {(r["question_id"], bool(r["repeat"])): r["first"] for r in conn.execute(
            "SELECT question_id, repeat, MIN(id) AS first FROM votes WHERE study_id = ? AND rater_id = ? "
            "GROUP BY question_id, repeat", (study_id, rater_id))}
        return _RaterView(study, {r["id"]: r for r in rows}, judged)

    def _item(self, view: _RaterView, rater_id: int, question_id: int, repeat: bool,
              given: dict | None = None) -> RatingItem:
        """The rating item of (question, repeat) as this rater sees it (sides swapped for a repeat)."""
        study, row = view.study, view.questions[question_id]
        a, b = (row["text_b"], row["text_a"]) if repeat else (row["text_a"], row["text_b"])
        _order, again = self._plan(study["seed"], rater_id, list(view.questions), study["repeats"])
        return RatingItem(study_id=study["id"], question_id=question_id, prompt=row["prompt"], answer_a=a,
                          answer_b=b, criteria=tuple(json.loads(study["criteria"])), done=len(view.judged),
                          total=len(view.questions) + len(again), repeat=repeat,
                          reference=row["reference"] if study["show_reference"] else None, given=given)

    def next_item(self, study_id: int, rater_id: int) -> RatingItem | None:
        """The next item for this rater, or None when they have judged everything generated so far.

        Unjudged items come in the rater's own random order; skipped ones come back after the others;
        a repeat (sides swapped) appears once REPEAT_GAP other items were judged since the original.
        Reads only studies, raters, questions, presented, votes and skips: never the key or `answers`.
        """
        with self._connect() as conn:
            view = self._rater_view(conn, study_id, rater_id)
            skips = {(r["question_id"], bool(r["repeat"])): r["seq"] for r in conn.execute(
                "SELECT seq, question_id, repeat FROM skips WHERE study_id = ? AND rater_id = ?",
                (study_id, rater_id))}
        votes = view.judged
        ready = {q for q, row in view.questions.items() if row["text_a"] is not None}
        order, again = self._plan(view.study["seed"], rater_id, list(view.questions), view.study["repeats"])
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
        return self._item(view, rater_id, *queue[0]) if queue else None

    def previous_item(self, study_id: int, rater_id: int, before: tuple[int, bool] | None = None) -> RatingItem | None:
        """The item the rater judged just before `before` (a (question_id, repeat) they judged; for one they have
        not judged, or None: their most recently judged item), or None when there is none. Items are ordered
        by their first vote; `given` holds the rater's latest vote on the item, to show and change."""
        with self._connect() as conn:
            view = self._rater_view(conn, study_id, rater_id)
            judged = sorted(view.judged, key=view.judged.get)
            key = (before[0], bool(before[1])) if before is not None else None
            earlier = judged[:judged.index(key)] if key in view.judged else judged
            if not earlier:
                return None
            question_id, repeat = earlier[-1]
            vote = conn.execute("SELECT choice, scores, comment FROM latest_votes WHERE study_id = ? AND rater_id = ? "
                                "AND question_id = ? AND repeat = ?",
                                (study_id, rater_id, question_id, int(repeat))).fetchone()
        given = {"choice": vote["choice"], "scores": json.loads(vote["scores"]) if vote["scores"] else None,
                 "comment": vote["comment"]}
        return self._item(view, rater_id, question_id, repeat, given)

    @staticmethod
    def _check_open(study: sqlite3.Row) -> None:
        """Refuse rating unless the study is open: `study_not_open` (draft), `study_paused`, `study_closed`."""
        refusal = {"draft": "study_not_open", "paused": "study_paused", "closed": "study_closed"}.get(study["state"])
        if refusal:
            raise EngineError(refusal, {"study_id": study["id"], "name": study["name"]})

    def skip(self, study_id: int, rater_id: int, question_id: int, repeat: bool = False) -> None:
        """Put an item at the back of this rater's queue; it comes back after the unseen ones. Only while the
        study is open; counts as the rater's activity."""
        with self._connect(write=True) as conn:
            self._check_open(self._study_row(conn, study_id))
            self._check_rater(conn, study_id, rater_id)
            self._check_question(conn, study_id, question_id)
            conn.execute("UPDATE raters SET last_active = ? WHERE id = ?", (now(), rater_id))
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
        """Record a judgement as shown: choice in A/B/tie/both_bad, optional 1-5 scores per shown side and
        criterion. Only while the study is open. Always a new row: the rater's earlier vote on the same
        (question, repeat) is superseded (kept, no longer counted). A comment holds at most MAX_COMMENT
        characters. Committed before returning; returns its id."""
        if choice not in CHOICES:
            raise EngineError("study_bad_choice", {"choice": choice, "choices": ", ".join(CHOICES)})
        if len(comment or "") > MAX_COMMENT:
            raise EngineError("study_comment_too_long", {"length": len(comment), "max": MAX_COMMENT})
        with self._connect(write=True) as conn:
            study = self._study_row(conn, study_id)
            self._check_open(study)
            self._check_rater(conn, study_id, rater_id)
            self._check_question(conn, study_id, question_id)
            if conn.execute("SELECT 1 FROM presented WHERE question_id = ?", (question_id,)).fetchone() is None:
                raise EngineError("study_not_generated", {"question_id": question_id}, hint="hint_study_generate")
            stored_scores = self._check_scores(scores, json.loads(study["criteria"]))
            stamp = now()
            vote_id = conn.execute(
                "INSERT INTO votes (study_id, question_id, rater_id, choice, scores, comment, created, repeat) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (study_id, question_id, rater_id, choice, stored_scores, comment or "", stamp,
                 int(bool(repeat)))).lastrowid
            conn.execute("UPDATE raters SET last_active = ? WHERE id = ?", (stamp, rater_id))
            conn.execute("DELETE FROM skips WHERE question_id = ? AND rater_id = ? AND repeat = ?",
                         (question_id, rater_id, int(bool(repeat))))
        return vote_id
