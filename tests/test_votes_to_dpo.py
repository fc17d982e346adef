"""The loop end to end on the bundled model (slow): a study of base vs SFT, the experts' votes, a DPO run prepared
from them, and the next study of SFT vs DPO, generated, voted, its statistics and exports naming both sides."""
from __future__ import annotations

import csv
import json

import pytest

from engine.chat.inference import GenParams
from engine.studio import Studio
from engine.training.adapters import BASE_CHOICE
from engine.training.events import RunState
from tests.conftest import EN_GREETING, sample_rows


def vote_all(studio: Studio, study_id: int, choices: list[str]) -> None:
    """Generate the study's answers, open it and cast one rater's votes (`choices` as shown, one per question)."""
    generated, _flagged = studio.generate_study(study_id)
    assert generated == len(choices)
    studio.set_study_state(study_id, "open")
    rater = studio.invite_rater(study_id, "Expert").rater_id
    for choice in choices:
        item = studio.next_item(study_id, rater)
        studio.vote(study_id, rater, item.question_id, choice)
    assert studio.next_item(study_id, rater) is None


@pytest.mark.slow
def test_votes_train_a_dpo_run_that_the_next_study_compares_with_the_sft_adapter(run_copy, tmp_path):
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    sft = run_copy.name
    questions = tmp_path / "questions.jsonl"
    prompts = [row["instruction"] for row in sample_rows() if row["output"].startswith(EN_GREETING)][:6]
    questions.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    params = GenParams(max_new_tokens=12)

    first = studio.create_study("base vs SFT", questions, sft, params)
    assert first["sides"]["baseline"]["choice"] == BASE_CHOICE and first["sides"]["candidate"]["choice"] == sft
    vote_all(studio, first["id"], ["A", "B", "A", "B", "tie", "both_bad"])
    config, counts = studio.prepare_dpo_from_study(first["id"])
    assert counts == {"pairs": 4, "votes": 6, "decided": 4, "split": 0, "ties": 1, "both_bad": 1, "repeats": 0}
    assert config.method == "dpo" and config.init_adapter == str(run_copy)

    dpo = studio.start(config)
    assert studio.runner.wait(600) is RunState.DONE, (tmp_path / "runs" / dpo / "train.log").read_text()[-3000:]
    followup = studio.followup_study(dpo)
    assert (followup["choice"], followup["baseline"], followup["questions_seen_in_training"]) == (dpo, sft, True)

    second = studio.create_study(followup["name"], followup["questions_path"], followup["choice"], params,
                                 baseline=followup["baseline"])
    assert second["sides"]["baseline"]["run_id"] == sft and second["sides"]["candidate"]["run_id"] == dpo
    vote_all(studio, second["id"], ["A", "A", "B", "B", "A", "tie"])
    answers = studio.studies.answer_pairs(second["id"])
    assert len(answers) == 6 and all(pair["base"] and pair["adapter"] for pair in answers)
    sft_answers = {p["prompt"]: p["adapter"] for p in studio.studies.answer_pairs(first["id"])}
    assert all(pair["base"] == sft_answers[pair["prompt"]] for pair in answers)  # the SFT side answers as before
    statistics = studio.study_statistics(second["id"])
    assert statistics["n_votes"] == 6
    with studio.export_study(second["id"], "csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {(row["baseline"], row["candidate"]) for row in rows} == {(sft, dpo)}
    assert studio.chat.loads == 1  # one copy of the base model served both studies' three adapters
