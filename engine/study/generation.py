"""Pre-generating a blind study: both sides' answers (baseline, candidate) for every pending question, each pair stored
with its A/B presentation as soon as it exists, so an interrupted generation resumes where it stopped.

A part of `StudyStore` (it uses the store's connections and `study`/`questions`).
"""
from __future__ import annotations

from typing import Any, Callable

from engine.errors import EngineError
from engine.study.database import StudyDatabase, now
from engine.study.questions import reveals_identity

GENERATION_BATCH = 4  # questions per mixed base/adapter batch when pre-generating a study


class StudyGeneration(StudyDatabase):
    """The generation part of `StudyStore`: which questions still need answers, storing and generating pairs."""

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
                         (question_id, base, adapter, int(flagged), now()))
            a, b = (adapter, base) if key["left_is_adapter"] else (base, adapter)
            conn.execute("INSERT OR REPLACE INTO presented (question_id, text_a, text_b) VALUES (?, ?, ?)",
                         (question_id, a, b))
        return flagged

    def generate(self, study_id: int, chat_model: Any, progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> int:
        """Generate both sides' answers for every pending question: the candidate (`run_dir`) against the baseline
        (`baseline_dir`; the base model when there is none, and then no `baseline` is passed, so a chat model
        that compares an adapter with its base model only serves such a study).

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
        sides = {"baseline": info["baseline_dir"]} if info["baseline_dir"] else {}
        generated = 0
        size = GENERATION_BATCH if hasattr(chat_model, "compare_batch") else 1
        for start in range(0, len(pending), size):
            if should_stop and should_stop():
                break
            chunk = pending[start:start + size]
            conversations = [[{"role": "user", "content": prompts[q]}] for q in chunk]
            if size > 1:
                pairs = chat_model.compare_batch(info["run_dir"] or None, conversations, params, **sides)
            else:
                pairs = [chat_model.compare(info["run_dir"] or None, conversations[0], params, **sides)]
            for question_id, pair in zip(chunk, pairs):
                self.store_answers(question_id, pair.base, pair.adapter)
            generated += len(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
        return generated
