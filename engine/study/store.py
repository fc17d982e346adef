"""Blind side-by-side studies: domain experts judge two sides' answers without knowing which is which.

The two sides are the *baseline* (`baseline_dir`; None: the base model) and the *candidate* (`run_dir`, an adapter
or checkpoint folder; "" would be the base model). For compatibility the stored names keep "base" for the baseline
side and "adapter" for the candidate side (`side_base_text`, `left_is_adapter`, `adapter_outcome`, ...);
`study()["sides"]` says what each side is (`engine.study.sides`).

One SQLite file (`studies.db`, WAL mode) holds everything (`engine.study.database`). Each call opens its own
connection, so a store can be shared between threads and processes, and every vote is committed before `vote`
returns. `StudyStore` is assembled from parts: setting up studies and their state (here), generating the
pairs (`engine.study.generation`), inviting raters (`engine.study.invitations`), rating (`engine.study.rating`)
and unblinding (`engine.study.results`).

A study is "draft" while it is set up, then "open" (raters vote), "paused" or "closed" (votes are refused).

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
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.locales import LANGS
from engine.study.database import STUDY_STATES, now
from engine.study.generation import StudyGeneration
from engine.study.invitations import Invitation, RaterPass, RaterProgress, StudyInvitations
from engine.study.questions import identity_flags, load_questions, reveals_identity, text_or_none
from engine.study.rating import RatingItem, StudyRating
from engine.study.results import StudyResults
from engine.study.sides import study_sides

__all__ = ["StudyStore", "RatingItem", "Invitation", "RaterPass", "RaterProgress", "STUDY_STATES", "balanced_sides",
           "identity_flags", "load_questions", "reveals_identity"]

DEFAULT_CRITERIA = ("terminology", "logic", "format")


def balanced_sides(count: int, seed: int) -> list[bool]:
    """left_is_adapter per position: exactly count//2 or count//2 + 1 True (the odd one by the generator),
    shuffled with `random.Random(seed)`; the same seed gives the same list."""
    rng = random.Random(seed)
    adapter_left = math.floor(count / 2) + (count % 2 if rng.random() < 0.5 else 0)
    sides = [True] * adapter_left + [False] * (count - adapter_left)
    rng.shuffle(sides)
    return sides


class StudyStore(StudyGeneration, StudyInvitations, StudyRating, StudyResults):
    """All studies in one SQLite file. Safe to share between threads: one connection per call."""

    def create_study(self, name: str, questions: list[dict[str, Any]], run_dir: str | Path,
                     gen_params: dict[str, Any] | None = None, criteria: list[str] | None = None,
                     seed: int | None = None, repeats: int = 0, state: str = "open", lang: str = "en",
                     show_reference: bool = False, baseline_dir: str | Path | None = None) -> int:
        """A new study of the candidate `run_dir` against the baseline `baseline_dir` (None: the base model) with its
        questions and its balanced blinding key, in `state` (see STUDY_STATES), shown to raters in `lang`, with or
        without the questions' reference answers; returns the study id."""
        from engine.chat.inference import GenParams

        name = (name or "").strip()
        if not name:
            raise EngineError("study_name_empty")
        self._check_state(state)
        self._check_lang(lang)
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
                "INSERT INTO studies (name, created, run_dir, baseline_dir, gen_params, criteria, seed, repeats, "
                "state, lang, show_reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, now(), str(run_dir or ""), str(baseline_dir) if baseline_dir else None,
                 json.dumps(gen_params, ensure_ascii=False),
                 json.dumps(criteria, ensure_ascii=False), seed, repeats, state, lang,
                 int(bool(show_reference)))).lastrowid
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
        """A study's settings, state and counts (no blinding key); `votes` counts the latest judgements only;
        `baseline_dir` (None: the base model) and `sides` ({"baseline": side, "candidate": side}) say what it
        compares."""
        with self._connect() as conn:
            row = self._study_row(conn, study_id)
            counts = conn.execute(
                "SELECT (SELECT COUNT(*) FROM questions WHERE study_id = :s) AS questions, "
                "(SELECT COUNT(*) FROM answers JOIN questions q ON q.id = question_id WHERE q.study_id = :s) "
                "AS generated, (SELECT COUNT(*) FROM raters WHERE study_id = :s) AS raters, "
                "(SELECT COUNT(*) FROM latest_votes WHERE study_id = :s) AS votes", {"s": study_id}).fetchone()
        return {"id": row["id"], "name": row["name"], "created": row["created"], "run_dir": row["run_dir"],
                "baseline_dir": row["baseline_dir"], "sides": study_sides(row["run_dir"], row["baseline_dir"]),
                "gen_params": json.loads(row["gen_params"]), "criteria": json.loads(row["criteria"]),
                "seed": row["seed"], "repeats": row["repeats"], "state": row["state"], "lang": row["lang"],
                "show_reference": bool(row["show_reference"]), **dict(counts)}

    def set_study_state(self, study_id: int, state: str) -> None:
        """Open, pause or close a study (in any order); never back to draft, and open only once every
        question has its answers."""
        self._check_state(state)
        if state == "draft":
            raise EngineError("study_back_to_draft", {"study_id": study_id})
        if state == "open" and self.pending_generation(study_id):
            raise EngineError("study_open_pending", {"study_id": study_id}, hint="hint_study_generate")
        with self._connect(write=True) as conn:
            self._study_row(conn, study_id)
            conn.execute("UPDATE studies SET state = ? WHERE id = ?", (state, study_id))

    @staticmethod
    def _check_state(state: str) -> None:
        """Refuse a state that is not one of STUDY_STATES (`study_bad_state`)."""
        if state not in STUDY_STATES:
            raise EngineError("study_bad_state", {"state": state, "states": ", ".join(STUDY_STATES)})

    @staticmethod
    def _check_lang(lang: str) -> None:
        """Refuse a raters' language the catalogue does not have (`study_bad_lang`)."""
        if lang not in LANGS:
            raise EngineError("study_bad_lang", {"lang": lang, "langs": ", ".join(LANGS)})

    def questions(self, study_id: int) -> list[dict[str, Any]]:
        """The study's questions (id, position, prompt, domain, reference), in order."""
        return self._study_rows(study_id, "SELECT id, position, prompt, domain, reference FROM questions "
                                          "WHERE study_id = ? ORDER BY position")

    def answer_pairs(self, study_id: int) -> list[dict[str, Any]]:
        """Each generated question with its reference and both answers, unblinded (organiser only)."""
        return self._study_rows(study_id, "SELECT q.id AS question_id, q.prompt, q.domain, q.reference, "
                                          "a.side_base_text AS base, a.side_adapter_text AS adapter FROM questions q "
                                          "JOIN answers a ON a.question_id = q.id WHERE q.study_id = ? "
                                          "ORDER BY q.position")

    def flagged(self, study_id: int) -> list[dict[str, Any]]:
        """Questions whose generated answers may reveal a model's identity (for the organiser only)."""
        return self._study_rows(study_id, "SELECT q.id, q.position, q.prompt FROM questions q JOIN answers a "
                                          "ON a.question_id = q.id WHERE q.study_id = ? AND a.flagged_identity "
                                          "ORDER BY q.position")
