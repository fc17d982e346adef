"""The loop from a blind study to preference tuning and back to a new study.

`prepare_dpo` turns a study's votes into a DPO run: the decided (A/B) verdicts become preference pairs written
beside the study's questions in the data folder, and the run continues the study's candidate adapter with the
`dpo` preset. `followup` then sets up the next study of that DPO run against the adapter it started from, on the
same questions when the run's data came from `prepare_dpo` (so the raters see questions the run trained on, and
the result says so), else on the held-out questions of the starting adapter's run.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine import presets
from engine.chat.sides import source_of
from engine.config import TrainConfig
from engine.errors import EngineError
from engine.study.questions import held_out_questions, write_questions
from engine.study.store import StudyStore
from engine.training import adapters

PREFERENCES_FILE = "study-{study_id}-preferences.jsonl"
QUESTIONS_FILE = "study-{study_id}-questions.jsonl"
PREFERENCES_NAME = re.compile(r"study-(\d+)-preferences\.jsonl")


def vote_counts(store: StudyStore, study_id: int) -> dict[str, int]:
    """The study's counted votes ("votes") and where each went: "decided" (A or B on a question whose raters'
    majority makes its pair) and those left out of the pairs: "split" (A or B on a question whose raters split
    evenly), "ties", "both_bad" and self-consistency "repeats"; votes = decided + split + ties + both_bad + repeats."""
    rows = store.results(study_id)
    first = [row for row in rows if not row["repeat"]]
    wins: dict[int, list[bool]] = {}
    for row in first:
        if row["adapter_outcome"] in ("win", "loss"):
            wins.setdefault(row["question_id"], []).append(row["adapter_outcome"] == "win")
    split = sum(len(outcomes) for outcomes in wins.values() if sum(outcomes) * 2 == len(outcomes))
    return {"votes": len(rows), "decided": sum(len(outcomes) for outcomes in wins.values()) - split, "split": split,
            "ties": sum(row["adapter_outcome"] == "tie" for row in first),
            "both_bad": sum(row["adapter_outcome"] == "both_bad" for row in first),
            "repeats": len(rows) - len(first)}


def prepare_dpo(store: StudyStore, study_id: int, folder: Path,
                config: TrainConfig | None = None) -> tuple[TrainConfig, dict[str, int]]:
    """Write the study's preference pairs and questions into `folder` (atomically) and return the DPO run's config
    (the `dpo` preset over `config`, default the candidate run's own) with "pairs" and the `vote_counts`. Refuses a
    study whose candidate is the base model and one without a question the raters' A/B votes decide."""
    info = store.study(study_id)
    if info["sides"]["candidate"]["run_id"] is None:
        raise EngineError("study_candidate_is_base", {"study_id": study_id}, hint="hint_study_candidate_adapter")
    candidate = source_of(info["run_dir"])
    counts = vote_counts(store, study_id)
    pairs = store.preference_pairs(study_id)
    if not pairs:
        raise EngineError("study_no_pairs", {"study_id": study_id, "ties": counts["ties"], "split": counts["split"],
                                             "both_bad": counts["both_bad"]}, hint="hint_study_more_votes")
    preferences = folder / PREFERENCES_FILE.format(study_id=study_id)
    counts = {"pairs": store.export_preferences(study_id, preferences), **counts}
    questions = [{key: question[key] for key in ("prompt", "domain", "reference")}
                 for question in store.questions(study_id)]
    write_questions(folder / QUESTIONS_FILE.format(study_id=study_id), questions)
    dpo = presets.apply_preset("dpo", config or candidate.config).replace(
        method="dpo", init_adapter=str(info["run_dir"]), dataset_path=str(preferences),
        model_name_or_path=candidate.model, mix_dataset_path="", mix_ratio=0.0, sft_on_chosen=False,
        dataset_encoding="auto", dataset_delimiter="auto")
    return dpo, counts


def newest_choice(run_dir: Path, checkpoint: str | None = None) -> str:
    """The choice of the run's `checkpoint` (one of its complete checkpoints with an adapter), else of its final
    adapter, else of its latest such checkpoint (a run stopped before saving it); `run_not_found` otherwise."""
    choices = [choice.value for choice in adapters.choices_for(run_dir.name, run_dir)]
    wanted = f"{run_dir.name}{adapters.CHECKPOINT_MARK}{checkpoint}" if checkpoint else None
    if not choices or (wanted is not None and wanted not in choices):
        raise EngineError("run_not_found", {"path": wanted or str(run_dir)}, hint="hint_pick_run")
    return wanted or choices[0]


def followup(run_dir: Path, folder: Path, checkpoint: str | None = None) -> dict[str, Any]:
    """The next study of the DPO run in `run_dir` (its `checkpoint`, else its newest adapter: `newest_choice`)
    against the adapter it started from: its name, question file, the two sides' choices and whether the run
    trained on those questions. The held-out questions of the starting adapter's run are written into `folder`
    when the run's data did not come from a study."""
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    if not config.init_adapter:
        raise EngineError("followup_needs_dpo", {"run_id": run_dir.name}, hint="hint_followup_dpo")
    baseline = adapters.choice_of(config.init_adapter)
    match = PREFERENCES_NAME.fullmatch(Path(config.dataset_path).name)
    questions = Path(config.dataset_path).with_name(QUESTIONS_FILE.format(study_id=match.group(1))) if match else None
    seen = questions is not None and questions.is_file()
    if not seen:
        start_run, _adapter = adapters.locate(config.init_adapter)
        questions = write_questions(folder / f"{start_run.name}-held-out.jsonl", held_out_questions(start_run))
    choice = newest_choice(run_dir, checkpoint)
    return {"name": f"{baseline} ↔ {choice}", "questions_path": str(questions), "choice": choice,
            "baseline": baseline, "questions_seen_in_training": seen}
