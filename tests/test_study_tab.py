"""The blind study through the UI layer: create, pre-generate, two raters judge, unblind, export."""
from __future__ import annotations

import json

import pytest
from gradio_client import Client

from engine.chat.inference import AnswerPair
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from tests.conftest import FakeJob


class FakeChat:
    """Answers that the test (not the rater) can tell apart; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def compare(self, run_dir, messages, params) -> AnswerPair:
        self.calls += 1
        question = messages[-1]["content"]
        return AnswerPair(base=f"Well, about '{question}': maybe.", adapter=f"Thanks for reaching out! About {question}.")


def finished_run(studio: Studio) -> str:
    run_id = studio.start(studio.default_config().replace(dataset_path=str(SAMPLE_DATASET)))
    studio.runner.wait(30)
    return run_id


def test_two_raters_and_unblinded_statistics(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    run_id = finished_run(studio)
    questions = tmp_path / "questions.csv"
    questions.write_text("question,domain\n" + "".join(f"Where is parcel #{i},{'shipping' if i < 5 else 'refunds'}\n"
                                                      for i in range(10)), encoding="utf-8")
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    study, info = organiser.predict("en", "Support answers", str(questions), run_id, "terminology, logic", "s3cret", 0,
                                    api_name="/study_create")
    assert "10 questions" in info
    study_id = study["value"] if isinstance(study, dict) else study
    assert "10 answer pair(s) generated" in organiser.predict("en", study_id, api_name="/study_generate")
    assert studio.chat.calls == 10
    organiser.predict("en", study_id, api_name="/study_generate")  # resumable: nothing left to do
    assert studio.chat.calls == 10

    first = [True] * 6 + [False] * 2 + [None] * 2
    second = [True] * 5 + [False] * 3 + [None] * 2
    for name, wishes in (("Dr. Li", first), ("Dr. Wong", second)):
        client = Client(url, verbose=False)
        assert rate_all_with(client, study_id, name, wishes) == 10

    summary, _chart, groups = organiser.predict("en", study_id, api_name="/study_results")
    # 20 votes: 11 adapter wins, 5 losses, 4 ties -> 55% [34-74%]; sign test 11 vs 5: p = 0.2101
    assert "**20 votes.**" in summary
    assert "adapter better: 55% [34–74%]" in summary and "p = 0.2101" in summary
    assert any(row[1] == "Dr. Li" and row[3].startswith("60%") for row in groups["data"])
    exported = organiser.predict("en", study_id, api_name="/study_export_jsonl")
    votes = [json.loads(line) for line in open(exported, encoding="utf-8")]
    assert len(votes) == 20 and {"adapter_outcome", "left_is_adapter"} <= set(votes[0])
    pairs = organiser.predict("en", study_id, api_name="/study_export_preferences")
    rows = [json.loads(line) for line in open(pairs, encoding="utf-8")]
    assert rows and all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)


def test_held_out_questions_a_checkpoint_and_generation_settings(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    run_id = finished_run(studio)
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    path, line = organiser.predict("en", run_id, api_name="/study_held_out")
    questions = studio.studies_questions(path)
    assert questions and all(q["reference"] for q in questions) and f"{len(questions)} held-out questions" in line
    study, _info = organiser.predict("en", "Held out", path, f"{run_id}@checkpoint-5", "logic", "", 0,
                                     48, 0.5, 0.9, 1.0, 7, "Be kind.", api_name="/study_create")
    info = studio.studies.study(study["value"] if isinstance(study, dict) else study)
    assert info["run_dir"] == str(studio.runner.run_dir(run_id) / "checkpoints" / "checkpoint-5")
    assert info["gen_params"] == {"max_new_tokens": 48, "temperature": 0.5, "top_p": 0.9, "repetition_penalty": 1.0,
                                  "seed": 7, "system_prompt": "Be kind."}
    with pytest.raises(Exception, match="No finished run with an adapter"):
        organiser.predict("en", "Nope", path, f"{run_id}@checkpoint-99", "logic", "", 0, api_name="/study_create")


def rate_all_with(client: Client, study_id: int, name: str, wishes: list[bool | None]) -> int:
    outputs = client.predict("en", study_id, name, "s3cret", api_name="/study_begin")
    votes = 0
    while True:
        progress, question, answer_a, answer_b = outputs[:4]
        if not answer_a:
            assert "All questions are judged" in progress
            return votes
        for shown in (progress, question, answer_a, answer_b):
            assert "adapter" not in shown.lower() and "smollm" not in shown.lower()
        wish = wishes[int(question.split("#")[-1])]
        adapter_is_a = answer_a.startswith("Thanks")
        choice = "tie" if wish is None else ("A" if wish == adapter_is_a else "B")
        outputs = client.predict("en", study_id, choice, "", 4, 3, 3, 3, 3, 2, 3, 3, 3, 3, api_name="/study_vote")
        votes += 1


def test_wrong_password_is_refused(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    run_dir = studio.runner.run_dir(finished_run(studio))
    study_id = studio.studies.create_study("s", [{"prompt": "q"}], run_dir, password="right")
    url, _app = serve(studio)
    try:
        Client(url, verbose=False).predict("en", study_id, "Eve", "wrong", api_name="/study_begin")
        raise AssertionError("a wrong password was accepted")
    except Exception as error:  # gradio_client raises AppError with the message
        assert "Wrong study password" in str(error)


def test_cli_lists_and_exports_a_study(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from engine.study.store import StudyStore

    store = StudyStore(tmp_path / "studies.db")
    study_id = store.create_study("cli", [{"prompt": "q1"}, {"prompt": "q2"}], tmp_path, seed=1)
    for question in store.questions(study_id):
        store.store_answers(question["id"], "base answer", "adapter answer")
    rater = store.add_rater(study_id, "Ann")
    while (item := store.next_item(study_id, rater)) is not None:
        store.vote(study_id, rater, item.question_id, "A" if item.answer_a == "adapter answer" else "B")
    root = Path(__file__).resolve().parent.parent

    def app(*args):
        return subprocess.run([sys.executable, "app.py", "study", *args, "--db", str(tmp_path / "studies.db")],
                              cwd=root, capture_output=True, text=True, timeout=120)

    assert "cli" in app("list").stdout
    out = tmp_path / "pairs.jsonl"
    result = app("export", "--study", str(study_id), "--format", "preferences", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(r["chosen"] == "adapter answer" for r in rows)
    missing = subprocess.run([sys.executable, "app.py", "study", "list", "--db", str(tmp_path / "none.db")],
                             cwd=root, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_real_model_study_end_to_end(serve, tmp_path, english_dataset):
    """A real short run; its study pre-generated by the real model (one load serves both sides);
    two raters judge through the UI; the unblinded counts add up."""
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    run_id = studio.start(studio.default_config().replace(
        dataset_path=str(english_dataset), max_steps=2, per_device_train_batch_size=2, max_length=96,
        eval_split=0.0, eval_strategy="no"))
    assert studio.runner.wait(900).value == "DONE"
    questions = [{"prompt": f"Question #{i}: where is my parcel {i}?",
                  "reference": "Thanks for reaching out to Orchard Lane! Parcels ship within 24 hours."} for i in range(3)]
    study_id = studio.studies.create_study("real", questions, studio.runner.run_dir(run_id),
                                           gen_params={"max_new_tokens": 32}, seed=3)
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    assert "3 answer pair(s) generated" in organiser.predict("en", study_id, api_name="/study_generate")
    assert studio.chat.loads == 1
    for name in ("Ann", "Bo"):
        client = Client(url, verbose=False)
        outputs = client.predict("en", study_id, name, "", api_name="/study_begin")
        while outputs[2]:  # answer A
            outputs = client.predict("en", study_id, "A", "", *([3] * 10), api_name="/study_vote")
    summary, _chart, _groups = organiser.predict("en", study_id, api_name="/study_results")
    assert "**6 votes.**" in summary
    automatic = organiser.predict("en", study_id, api_name="/study_metrics")
    assert automatic.count("ROUGE-L") == 2 and automatic.count("perplexity") == 2
