"""The blind study through the UI layer: create, pre-generate, two raters judge, unblind, export; and the
tab's handlers called directly with a fake studio."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from engine.chat.inference import AnswerPair
from engine.errors import EngineError
from engine.locales import render_error
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from engine.study.rating import RatingItem
from engine.study.stats import summarize
from tests.conftest import FakeJob
from ui import study_organise, study_rate, study_results
from ui.i18n import t
from ui.study_organise import MAX_CRITERIA, SetupView
from ui.study_rate import RatingView
from ui.study_results import ResultsView


class FakeChat:
    """Answers that the test (not the rater) can tell apart; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def compare(self, run_dir, messages, params) -> AnswerPair:
        self.calls += 1
        question = messages[-1]["content"]
        return AnswerPair(base=f"Well, about '{question}': maybe.",
                          adapter=f"Thanks for reaching out! About {question}.")


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
    reference = "Thanks for reaching out to Orchard Lane! Parcels ship within 24 hours."
    questions = [{"prompt": f"Question #{i}: where is my parcel {i}?", "reference": reference} for i in range(3)]
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


# the handlers called directly, with a fake studio ---------------------------------------------------
class FakeStudies:
    """Stands in for `Studio` on the study tab: a two-criteria study with one item to judge."""

    def __init__(self) -> None:
        self.votes: list[tuple] = []
        self.item = RatingItem(study_id=1, question_id=7, prompt="Where is my parcel?", answer_a="A text",
                               answer_b="B text", criteria=("logic", "format"), done=0, total=2)

    def study(self, study_id):
        return {"id": study_id, "criteria": ["logic", "format"]}

    def check_study_password(self, study_id, password):
        return password == "right"

    def add_rater(self, study_id, name):
        return 3

    def next_item(self, study_id, rater_id):
        return None if self.votes else self.item

    def generation_pending(self, study_id):
        return False

    def vote(self, study_id, rater_id, question_id, choice, scores=None, comment="", repeat=False):
        self.votes.append((study_id, rater_id, question_id, choice, scores, comment, repeat))

    def study_statistics(self, study_id):
        rows = [{"question_id": q, "rater_id": 1, "rater": "Ann", "adapter_outcome": o, "domain": "law",
                 "repeat": False, "adapter_scores": {}, "base_scores": {}, "flagged_identity": False}
                for q, o in ((1, "win"), (2, "win"), (3, "loss"))]
        return summarize(rows)

    def study_reference_scores(self, study_id):
        return {side: {"rouge_l": None, "bleu": None, "n": 0} for side in ("base", "adapter")}

    def study_perplexity(self, study_id):
        raise EngineError("run_not_found", {"path": "runs/gone"}, hint="hint_pick_run")

    def create_study(self, *args, **kwargs):
        raise EngineError("study_name_empty")

    def export_study(self, study_id, kind):
        return Path(f"/tmp/study-{study_id}.{kind}")


def view_of(view_class, **lists):
    """A view whose components are their own field names (handlers' dicts are then keyed by names)."""
    return view_class(**{f.name: lists.get(f.name, f.name) for f in dataclasses.fields(view_class)})


def rating_view() -> RatingView:
    return view_of(RatingView, scores_a=[f"a{i}" for i in range(MAX_CRITERIA)],
                   scores_b=[f"b{i}" for i in range(MAX_CRITERIA)])


def test_submit_vote_without_a_chosen_answer_is_refused_in_words():
    studio, view = FakeStudies(), rating_view()
    for lang in ("en", "zh"):
        with pytest.raises(gr.Error) as refused:
            study_rate.submit_vote(studio, view, lang, 1, 3, (7, False), None, "", *([3] * 10))
        assert refused.value.message == t("rate_choose", lang)
    with pytest.raises(gr.Error) as early:
        study_rate.submit_vote(studio, view, "en", 1, None, None, "A", "")
    assert early.value.message == t("rate_begin_first", "en")
    assert studio.votes == []


def test_begin_rating_shows_the_item_with_a_slider_per_criterion():
    studio, view = FakeStudies(), rating_view()
    with pytest.raises(gr.Error) as refused:
        study_rate.begin_rating(studio, view, "zh", 1, "Ann", "wrong")
    assert refused.value.message == t("study_wrong_password", "zh")
    with pytest.raises(gr.Error) as no_study:
        study_rate.begin_rating(studio, view, "en", None, "Ann", "right")
    assert no_study.value.message == t("study_none", "en")
    shown = study_rate.begin_rating(studio, view, "en", 1, "Ann", "right")
    assert set(shown) == set(view.outputs)
    assert shown["rater_id"] == 3 and shown["item"] == (7, False) and shown["answer_a"] == "A text"
    assert [shown[f"a{i}"].visible for i in range(MAX_CRITERIA)] == [True, True, False, False, False]
    assert shown["b1"].label == "B · format"


def test_submit_vote_maps_the_sliders_to_criteria_then_shows_the_next_item():
    studio, view = FakeStudies(), rating_view()
    after = study_rate.submit_vote(studio, view, "en", 1, 3, (7, True), "B", "fine", 4, 5, 3, 3, 3, 2, 1, 3, 3, 3)
    assert studio.votes == [(1, 3, 7, "B", {"A": {"logic": 4, "format": 5}, "B": {"logic": 2, "format": 1}},
                             "fine", True)]
    assert after["progress"] == t("rate_done", "en") and after["item"] is None and after["answer_a"] == ""


def test_unblind_results_returns_summary_chart_and_table_keyed_by_the_view():
    view = view_of(ResultsView)
    shown = study_results.unblind_results(FakeStudies(), view, "en", 1)
    assert set(shown) == {"summary", "chart", "groups"}
    assert "**3 votes.**" in shown["summary"] and "67%" in shown["summary"]
    assert shown["chart"].data[0].y[0] == pytest.approx(2 / 3)
    assert list(shown["groups"].iloc[0][:3]) == [t("group_kind_domain", "en"), "law", 3]


def test_automatic_metrics_words_a_perplexity_that_cannot_be_measured():
    shown = study_results.automatic_metrics(FakeStudies(), view_of(ResultsView), "zh", 1)
    lines = shown["metrics"].split("\n\n")
    assert lines[0] == t("metrics_no_reference", "zh") and "runs/gone" in lines[1] and len(lines) == 2


def test_create_study_words_an_engine_error_and_export_returns_the_file():
    view = view_of(SetupView)
    with pytest.raises(gr.Error) as refused:
        study_organise.create_study(FakeStudies(), view, "zh", "", "q.csv", "run", "logic", "", 0)
    assert refused.value.message == render_error(EngineError("study_name_empty"), "zh")
    exported = study_results.export_study(FakeStudies(), view_of(ResultsView), "jsonl", "en", 4)
    assert exported == {"exported": str(Path("/tmp/study-4.jsonl"))}
    with pytest.raises(gr.Error):
        study_results.export_study(FakeStudies(), view_of(ResultsView), "csv", "en", None)
