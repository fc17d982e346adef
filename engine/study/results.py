"""Unblinding a blind study: votes mapped through the key, exports with the key, DPO preference pairs.

Only the votes that count are read (`latest_votes`: each rater's latest per question and repeat), so the
statistics and exports built on `results` never see a superseded vote.

A part of `StudyStore` (it uses the store's connections and `study`); only the organiser's screens and the
CLI call these, never the raters' view.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.study.database import StudyDatabase
from engine.study.sides import study_sides
from engine.system.files import write_text_atomic


class StudyResults(StudyDatabase):
    """The unblinding part of `StudyStore`: results with the key, vote exports and preference pairs."""

    def results(self, study_id: int) -> list[dict[str, Any]]:
        """One row per counted vote (each rater's latest per item), unblinded: adapter_outcome (the candidate's) in
        win/loss/tie/both_bad, scores per model, and the sides' choice strings (`baseline`, `candidate`)."""
        with self._connect() as conn:
            study = self._study_row(conn, study_id)
            rows = conn.execute(
                "SELECT v.id AS vote_id, v.question_id, q.position, q.prompt, q.domain, q.reference, v.rater_id, "
                "r.name AS rater, v.choice, v.scores, v.comment, v.created, v.repeat, b.left_is_adapter, "
                "a.side_base_text, a.side_adapter_text, a.flagged_identity FROM latest_votes v "
                "JOIN questions q ON q.id = v.question_id JOIN raters r ON r.id = v.rater_id "
                "JOIN blinding b ON b.question_id = v.question_id "
                "LEFT JOIN answers a ON a.question_id = v.question_id "
                "WHERE v.study_id = ? ORDER BY v.id", (study_id,)).fetchall()
        sides = study_sides(study["run_dir"], study["baseline_dir"])
        named = {"baseline": sides["baseline"]["choice"], "candidate": sides["candidate"]["choice"]}
        out = []
        for row in rows:
            repeat = bool(row["repeat"])
            adapter_shown_as = "A" if bool(row["left_is_adapter"]) != repeat else "B"
            base_shown_as = "B" if adapter_shown_as == "A" else "A"
            choice = row["choice"]
            if choice in ("A", "B"):
                outcome = "win" if choice == adapter_shown_as else "loss"
            else:
                outcome = choice
            scores = json.loads(row["scores"]) if row["scores"] else {}
            out.append({
                "vote_id": row["vote_id"], "study_id": study_id, "question_id": row["question_id"],
                "position": row["position"], "prompt": row["prompt"], "domain": row["domain"],
                "reference": row["reference"], "rater_id": row["rater_id"], "rater": row["rater"],
                "choice": choice, "repeat": repeat, "adapter_shown_as": adapter_shown_as,
                "left_is_adapter": bool(row["left_is_adapter"]), "adapter_outcome": outcome,
                "adapter_scores": scores.get(adapter_shown_as, {}), "base_scores": scores.get(base_shown_as, {}),
                "comment": row["comment"], "created": row["created"],
                "flagged_identity": bool(row["flagged_identity"]),
                "base_text": row["side_base_text"], "adapter_text": row["side_adapter_text"], **named})
        return out

    def export_votes(self, study_id: int, path: str | Path, fmt: str = "csv") -> Path:
        """Every counted vote with the key (csv: UTF-8 with BOM so spreadsheets read Chinese; or jsonl)."""
        if fmt not in ("csv", "jsonl"):
            raise EngineError("study_bad_export_format", {"fmt": fmt})
        rows = self.results(study_id)
        path = Path(path)
        if fmt == "jsonl":
            write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            return path
        criteria = self.study(study_id)["criteria"]
        fields = [k for k in (rows[0] if rows else self._empty_result()) if k not in ("adapter_scores", "base_scores")]
        fields += [f"{side}_{c}" for side in ("adapter", "base") for c in criteria]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = {k: v for k, v in row.items() if k in fields}
            for side in ("adapter", "base"):
                for c in criteria:
                    flat[f"{side}_{c}"] = row[f"{side}_scores"].get(c, "")
            writer.writerow(flat)
        write_text_atomic(path, "\ufeff" + buffer.getvalue())
        return path

    @staticmethod
    def _empty_result() -> dict[str, None]:
        """The keys of a `results` row (the CSV header of a study without votes)."""
        keys = ("vote_id study_id question_id position prompt domain reference rater_id rater choice repeat "
                "adapter_shown_as left_is_adapter adapter_outcome comment created flagged_identity base_text "
                "adapter_text baseline candidate").split()
        return dict.fromkeys(keys)

    def preference_pairs(self, study_id: int, per_vote: bool = False) -> list[dict[str, str]]:
        """{"prompt", "chosen", "rejected"} from decided votes (win or loss; self-consistency repeats left out).

        By default one pair per question, by majority of the raters' decided votes (split questions are
        left out, so the pairs never contradict each other); per_vote=True gives one pair per decided vote.
        """
        decided = [r for r in self.results(study_id) if not r["repeat"] and r["adapter_outcome"] in ("win", "loss")]

        def pair(row: dict[str, Any], adapter_preferred: bool) -> dict[str, str]:
            chosen, rejected = ((row["adapter_text"], row["base_text"]) if adapter_preferred
                                else (row["base_text"], row["adapter_text"]))
            return {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected}

        if per_vote:
            return [pair(r, r["adapter_outcome"] == "win") for r in decided]
        tally: dict[int, list[dict[str, Any]]] = {}
        for row in decided:
            tally.setdefault(row["question_id"], []).append(row)
        pairs = []
        for rows in sorted(tally.values(), key=lambda rs: rs[0]["position"]):
            wins = sum(r["adapter_outcome"] == "win" for r in rows)
            if wins * 2 != len(rows):
                pairs.append(pair(rows[0], wins * 2 > len(rows)))
        return pairs

    def export_preferences(self, study_id: int, path: str | Path, per_vote: bool = False) -> int:
        """Write `preference_pairs` as JSONL (ready for TRL's DPOTrainer); returns the number of pairs."""
        pairs = self.preference_pairs(study_id, per_vote)
        write_text_atomic(path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
        return len(pairs)
