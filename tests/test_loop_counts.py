"""The votes -> DPO -> next study loop's edges: the vote counts add up to the votes (split questions counted), a
follow-up of a checkpoint or of a run stopped before its final adapter, and perplexity of a study whose candidate
is the base model (fast: folders shaped like runs and a fake chat model, as in tests/test_sides.py)."""
from __future__ import annotations

import shutil

import pytest

from engine.errors import EngineError
from engine.locales import render
from engine.training.adapters import BASE_CHOICE
from tests.test_sides import QUESTIONS, fake_run, questions_file, studio  # noqa: F401 - the fixtures


def _vote_all(studio, study_id: int, name: str, outcome_of) -> None:  # noqa: F811 - a Studio, not the fixture
    """One rater votes on every item: `outcome_of(question_id)` in win/loss/tie, the candidate ("dpo: ...") being
    shown as A or B."""
    rater = studio.invite_rater(study_id, name).rater_id
    while (item := studio.next_item(study_id, rater)) is not None:
        outcome = outcome_of(item.question_id)
        candidate_is_a = item.answer_a.startswith("dpo: ")
        choice = {"win": "A" if candidate_is_a else "B", "loss": "B" if candidate_is_a else "A"}.get(outcome, outcome)
        studio.vote(study_id, rater, item.question_id, choice, repeat=item.repeat)


def test_the_vote_counts_add_up_to_the_votes_with_split_questions_counted(studio, questions_file):  # noqa: F811
    study_id = studio.create_study("split", questions_file, "dpo")["id"]
    studio.generate_study(study_id)
    studio.set_study_state(study_id, "open")
    first = min(question["id"] for question in studio.studies.questions(study_id))
    _vote_all(studio, study_id, "Ann", lambda question_id: "win")
    _vote_all(studio, study_id, "Bob", lambda question_id: "loss" if question_id == first else "tie")
    config, counts = studio.prepare_dpo_from_study(study_id)
    assert counts["split"] == 2, "Ann's win and Bob's loss on the first question, left out of the pairs"
    assert counts["pairs"] == len(QUESTIONS) - 1 == counts["decided"] and counts["ties"] == len(QUESTIONS) - 1
    assert counts["votes"] == sum(counts[part] for part in ("decided", "split", "ties", "both_bad", "repeats"))
    assert counts["votes"] == len(studio.studies.results(study_id))
    for lang in ("en", "zh"):
        assert "2" in render("study_no_pairs", {"study_id": 1, "ties": 0, "both_bad": 0, "split": 2}, lang)


def test_a_follow_up_takes_a_checkpoint_choice_and_a_run_stopped_before_its_adapter(studio, tmp_path):  # noqa: F811
    runs, studies = tmp_path / "runs", tmp_path / "data" / "studies"
    studies.mkdir(parents=True)
    (studies / "study-1-questions.jsonl").write_text('{"prompt": "Where is my parcel?"}\n', encoding="utf-8")
    fake_run(runs, "dpo2", init_adapter=str(runs / "dpo"), method="dpo",
             dataset_path=str(studies / "study-1-preferences.jsonl"))
    assert studio.followup_study("dpo2@checkpoint-2")["choice"] == "dpo2@checkpoint-2"
    assert studio.followup_study("dpo2")["choice"] == "dpo2"
    shutil.rmtree(runs / "dpo2" / "adapter")  # stopped: only its checkpoints hold an adapter
    plan = studio.followup_study("dpo2")
    assert plan["choice"] == "dpo2@checkpoint-2" and plan["name"] == "dpo ↔ dpo2@checkpoint-2"
    for missing_choice in ("dpo2@checkpoint-9", "dpo2@checkpoint-2/../../../sft"):
        with pytest.raises(EngineError) as missing:
            studio.followup_study(missing_choice)
        assert missing.value.code == "run_not_found"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_perplexity_of_a_study_whose_candidate_is_the_base_model_is_refused_in_words(studio, questions_file,  # noqa: F811
                                                                                   lang):
    study_id = studio.create_study("base as candidate", questions_file, BASE_CHOICE, baseline="sft")["id"]
    with pytest.raises(EngineError) as refused:
        studio.study_perplexity(study_id)
    assert refused.value.code == "study_perplexity_needs_adapter"
    assert refused.value.hint == "hint_study_candidate_adapter"
    words = render("study_perplexity_needs_adapter", refused.value.params, lang)
    assert str(study_id) in words and words != render("study_perplexity_needs_adapter", refused.value.params,
                                                      "zh" if lang == "en" else "en")
