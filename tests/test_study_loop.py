"""The study tab's two sides and its loop, handlers called with a fake studio in both languages: the baseline picker,
the criteria's default words, results naming the sides, "Improve with these votes" (votes -> a DPO run on the
form, the Training tab opened) and "Compare with the previous adapter" (the next study set up); and the loop once
through the served app with the real studio (a fake trainer and chat model)."""
from __future__ import annotations

import dataclasses

import gradio as gr
import pytest
from gradio_client import Client

from engine import BASE_CHOICE, TrainConfig
from engine.errors import EngineError
from engine.locales import render_error
from engine.studio import Studio
from engine.study.stats import summarize
from engine.training.adapters import AdapterChoice
from tests.conftest import FakeJob
from tests.test_study_tab import FakeChat, finished_run
from ui import forms, present, study_dashboard, study_loop, study_organise, study_results
from ui.i18n import t
from ui.study_dashboard import DashboardView
from ui.study_loop import FollowupView, ImproveView
from ui.study_organise import SetupView
from ui.study_results import ResultsView

SFT, DPO = "20261201-100000", "20261201-120000"
SIDES = {"baseline": {"choice": BASE_CHOICE, "run_id": None, "step": None, "model": "SmolLM2"},
         "candidate": {"choice": f"{SFT}@checkpoint-27", "run_id": SFT, "step": 27, "model": "SmolLM2"}}


class LoopStudio:
    """Stands in for `Studio`: a study of the base model against an SFT checkpoint with a few votes, the DPO run
    its votes prepare, and the follow-up study of that run; records what it was asked."""

    def __init__(self, pairs: int = 4, seen: bool = True) -> None:
        self.pairs, self.seen, self.asked = pairs, seen, []
        self.studies = [{"id": 3, "name": "first"}]

    def adapter_choices(self):
        return [AdapterChoice(DPO, DPO), AdapterChoice(SFT, SFT), AdapterChoice(f"{SFT}@checkpoint-27", SFT, 27)]

    def study(self, study_id):
        return {"id": study_id, "state": "closed", "votes": 9, "criteria": ["logic"], "sides": SIDES}

    def list_studies(self):
        return list(self.studies)

    def generation_pending(self, study_id):
        return False

    def study_statistics(self, study_id):
        rows = [{"question_id": q, "rater_id": 1, "rater": "Ann", "adapter_outcome": o, "domain": "law",
                 "repeat": False, "adapter_scores": {"logic": 4}, "base_scores": {"logic": 2},
                 "flagged_identity": False} for q, o in ((1, "win"), (2, "win"), (3, "loss"))]
        return summarize(rows)

    def rater_progress(self, study_id):
        return []

    def study_reference_scores(self, study_id):
        return {side: {"rouge_l": 0.5, "bleu": 0.25, "n": 3} for side in ("base", "adapter")}

    def study_perplexity(self, study_id):
        return {side: {"rows": 2, "loss": 1.0, "perplexity": 2.72} for side in ("base", "adapter")}

    def prepare_dpo_from_study(self, study_id, config=None):
        self.asked.append(("prepare", study_id))
        if not self.pairs:
            raise EngineError("study_no_pairs", {"study_id": study_id, "ties": 2, "split": 0, "both_bad": 1},
                              hint="hint_study_more_votes")
        config = TrainConfig().replace(method="dpo", init_adapter=f"runs/{SFT}/checkpoints/checkpoint-27",
                                       dataset_path="data/studies/study-3-preferences.jsonl", learning_rate=5e-7,
                                       beta=0.2, loss_type="ipo")
        return config, {"pairs": self.pairs, "votes": 9, "decided": 4, "split": 1, "ties": 1, "both_bad": 1,
                        "repeats": 2}

    def followup_study(self, run_id):
        self.asked.append(("followup", run_id))
        if run_id != DPO:
            raise EngineError("followup_needs_dpo", {"run_id": run_id}, hint="hint_followup_dpo")
        return {"name": f"{SFT} ↔ {DPO}", "questions_path": "data/studies/study-3-questions.jsonl", "choice": DPO,
                "baseline": SFT, "questions_seen_in_training": self.seen}

    def create_study(self, *args, **kwargs):
        self.asked.append(("create", args, kwargs))
        self.studies.insert(0, {"id": len(self.studies) + 3, "name": args[0]})
        return {"id": self.studies[0]["id"], "questions": 3}


def view_of(view_class, **given):
    """A view whose components are their own field names (handlers' dicts are then keyed by names)."""
    return view_class(**{f.name: given.get(f.name, f.name) for f in dataclasses.fields(view_class)})


FORM = {name: f"field:{name}" for name in ("method", "init_adapter", "learning_rate", "beta", "loss_type", "lora_r")}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_improve_with_these_votes_fills_the_form_and_opens_the_training_tab(lang):
    studio = LoopStudio()
    view = view_of(ImproveView, fields=FORM, tabs="tabs")
    shown = study_loop.improve_with_votes(studio, view, lang, "3")
    assert studio.asked == [("prepare", 3)]
    assert shown["dataset_path"] == "data/studies/study-3-preferences.jsonl"
    assert [shown[FORM[name]] for name in FORM] == ["dpo", f"runs/{SFT}/checkpoints/checkpoint-27", 5e-7, 0.2, "ipo",
                                                    TrainConfig().lora_r]
    assert shown["tabs"].selected == "tab-training"
    assert shown["info"] == t("study_improve_done", lang, pairs=4, votes=9, decided=4, split=1, ties=1, both_bad=1,
                              repeats=2, adapter=t("side_run_step", lang, run=SFT, step=27), beta=0.2, lr=5e-7,
                              loss="ipo")
    assert ("4" in shown["info"] and "9" in shown["info"] and f"{SFT} · " in shown["info"]
            and "0.2" in shown["info"] and "5e-07" in shown["info"])
    counts = studio.prepare_dpo_from_study(3)[1]
    for shown_count in ("decided", "split"):  # the notice names every part the votes add up to
        other = {**counts, shown_count: 7}
        assert t("study_improve_done", lang, **other, adapter="x", beta=0.2, lr=5e-7, loss="ipo") != t(
            "study_improve_done", lang, **counts, adapter="x", beta=0.2, lr=5e-7, loss="ipo")
    assert view.outputs == [*FORM.values(), "dataset_path", "info", "tabs"]


def test_improve_fills_the_real_form_in_its_field_order_and_works_without_tabs():
    names = forms.form_fields()
    view = ImproveView(fields={name: name for name in names}, dataset_path="path", info="info")
    shown = study_loop.improve_with_votes(LoopStudio(), view, "en", 3)
    assert set(shown) == {*names, "path", "info"} and view.outputs == [*names, "path", "info"]
    assert (shown["method"], shown["beta"], shown["lora_target_modules"]) == ("dpo", 0.2, ["all-linear"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_improve_without_decided_votes_or_a_study_is_refused_in_words(lang):
    view = view_of(ImproveView, fields=FORM)
    with pytest.raises(gr.Error) as no_pairs:
        study_loop.improve_with_votes(LoopStudio(pairs=0), view, lang, 3)
    assert no_pairs.value.message == render_error(
        EngineError("study_no_pairs", {"study_id": 3, "ties": 2, "split": 0, "both_bad": 1},
                    hint="hint_study_more_votes"), lang)
    with pytest.raises(gr.Error) as no_study:
        study_loop.improve_with_votes(LoopStudio(), view, lang, None)
    assert no_study.value.message == t("study_none", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_compare_with_the_previous_adapter_sets_up_the_next_study(lang):
    studio = LoopStudio()
    shown = study_loop.compare_with_previous(studio, view_of(FollowupView), lang, DPO)
    assert studio.asked == [("followup", DPO)]
    assert (shown["name"], shown["questions_path"]) == (f"{SFT} ↔ {DPO}", "data/studies/study-3-questions.jsonl")
    assert (shown["baseline"].value, shown["run"].value) == (SFT, DPO)
    assert shown["baseline"].choices[0] == (t("side_base", lang), BASE_CHOICE)
    assert shown["run"].choices[-1] == (f"{SFT} · {t('checkpoint_at_step', lang, step=27)}", f"{SFT}@checkpoint-27")
    done, warning = shown["info"].split("\n\n")
    assert done == t("study_followup_done", lang, candidate=t("side_run", lang, run=DPO),
                     baseline=t("side_run", lang, run=SFT), path="data/studies/study-3-questions.jsonl")
    assert warning == t("study_followup_seen", lang)
    fresh = study_loop.compare_with_previous(LoopStudio(seen=False), view_of(FollowupView), lang, DPO)
    assert t("study_followup_seen", lang) not in fresh["info"] and fresh["info"] == done


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_compare_with_the_previous_adapter_refuses_a_run_that_continued_nothing(lang):
    with pytest.raises(gr.Error) as refused:
        study_loop.compare_with_previous(LoopStudio(), view_of(FollowupView), lang, SFT)
    assert refused.value.message == render_error(
        EngineError("followup_needs_dpo", {"run_id": SFT}, hint="hint_followup_dpo"), lang)
    with pytest.raises(gr.Error) as none:
        study_loop.compare_with_previous(LoopStudio(), view_of(FollowupView), lang, "")
    assert none.value.message == t("no_runs", lang)


def test_a_study_compares_the_chosen_baseline_and_refuses_the_same_model_twice():
    studio = LoopStudio()
    view = view_of(SetupView)
    shown = study_organise.create_study(studio, view, "en", "next", "q.csv", DPO, "logic，format", "zh", False, 0,
                                        baseline=SFT)
    _create, args, kwargs = studio.asked[0]
    assert args[:3] == ("next", "q.csv", DPO) and kwargs["baseline"] == SFT
    assert kwargs["criteria"] == ["logic", "format"]  # a Chinese comma separates criteria too
    assert shown["study"].value == 4
    study_organise.create_study(studio, view, "en", "plain", "q.csv", DPO, "logic", "en", False, 0)
    assert studio.asked[1][2]["baseline"] == BASE_CHOICE
    with pytest.raises(gr.Error) as same:
        study_organise.create_study(studio, view, "zh", "same", "q.csv", SFT, "logic", "zh", False, 0, baseline=SFT)
    assert same.value.message == t("sides_same", "zh", side=t("side_run", "zh", run=SFT)) and len(studio.asked) == 2


def test_the_setup_pickers_are_worded_in_the_page_language_and_keep_their_choice():
    view = view_of(SetupView)
    loaded = study_organise.refresh_pickers(LoopStudio(), view, "zh")
    assert loaded["baseline"].value == BASE_CHOICE and loaded["run"].value == DPO and loaded["study"].value == 3
    assert loaded["baseline"].choices[0] == ("基础模型", BASE_CHOICE)
    assert ("20261201-100000 · 第 27 步的检查点", f"{SFT}@checkpoint-27") in loaded["run"].choices
    switched = study_organise.reword_pickers(LoopStudio(), view, "en", SFT, f"{SFT}@checkpoint-27")
    assert (switched["baseline"].value, switched["run"].value) == (SFT, f"{SFT}@checkpoint-27")
    assert switched["run"].choices[-1] == (f"{SFT} · checkpoint at step 27", f"{SFT}@checkpoint-27")


def test_the_default_criteria_follow_the_page_language_but_typed_ones_stay():
    assert study_organise.default_criteria("en") == "terminology, logic, format"
    assert study_organise.default_criteria("zh") == "术语, 逻辑, 格式"
    reword = study_organise.reword_criteria
    assert reword(None, "box", "zh", "terminology, logic, format") == {"box": "术语, 逻辑, 格式"}
    assert reword(None, "box", "en", "术语，逻辑，格式") == {"box": "terminology, logic, format"}
    assert reword(None, "box", "zh", "accuracy, tone")["box"] == gr.skip()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_results_and_the_dashboard_name_the_two_sides(lang):
    studio = LoopStudio()
    base, candidate = t("side_base", lang), t("side_run_step", lang, run=SFT, step=27)
    shown = study_results.unblind_results(studio, view_of(ResultsView), lang, 3)
    summary = shown["summary"]
    assert summary.startswith(t("sides_compared", lang, baseline=base, candidate=candidate))
    assert f"- {t('outcome_side_win', lang, candidate=candidate)}: 67%" in summary
    assert f"- {t('outcome_side_loss', lang, baseline=base)}: 33%" in summary
    criterion = t("study_criterion_sides", lang, name="logic", adapter=4, base=2, baseline=base, candidate=candidate)
    assert criterion in summary
    assert list(shown["chart"].data[0].x[:2]) == [t("outcome_side_win", lang, candidate=candidate),
                                                   t("outcome_side_loss", lang, baseline=base)]
    assert t("outcome_side_win", lang, candidate=candidate) in shown["groups"].columns
    metrics = study_results.automatic_metrics(studio, view_of(ResultsView), lang, 3)["metrics"].split("\n\n")
    assert [line.split(":")[0].split("：")[0] for line in metrics] == [base, candidate, base, candidate]
    view = view_of(DashboardView, buttons=["open", "paused", "closed"])
    state = study_dashboard.show_dashboard(studio, view, lang, 3)["state"]
    assert t("sides_compared", lang, baseline=base, candidate=candidate) in state


def test_a_side_is_named_from_a_study_an_adapter_choice_or_a_picker_value():
    assert present.side_label(SIDES["baseline"], "zh") == "基础模型"
    assert present.side_label(SIDES["candidate"], "en") == f"run {SFT} · step 27"
    assert present.side_label(AdapterChoice(DPO, DPO), "zh") == f"训练 {DPO}"
    assert present.side_label(BASE_CHOICE, "en") == "Base model" and present.side_label("typed", "en") == "typed"
    assert present.adapter_choices([AdapterChoice(DPO, DPO)], "zh", base=True) == [("基础模型", BASE_CHOICE),
                                                                                   (DPO, DPO)]


def picked(picker):
    """A dropdown output's value, as gradio_client returns it (the value, or an update holding it)."""
    return picker["value"] if isinstance(picker, dict) else picker


def test_the_loop_through_the_app_votes_to_a_dpo_run_and_on_to_the_next_study(serve, tmp_path):
    """The real studio (a fake trainer and chat model) behind the served app: a study's votes fill the form for a
    DPO run continuing the study's adapter; once that run has trained, the next study compares it with that
    adapter on the same questions, and says that their votes trained it."""
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    sft = finished_run(studio)
    questions = tmp_path / "questions.csv"
    questions.write_text("question\nWhere is my parcel?\nHow do I return a jacket?\nCan I change my address?\n",
                         encoding="utf-8")
    study_id = studio.create_study("first", questions, sft)["id"]
    studio.generate_study(study_id)
    rater = studio.invite_rater(study_id, "Ann").rater_id
    studio.set_study_state(study_id, "open")
    for choice in ("A", "B", "tie"):
        item = studio.next_item(study_id, rater)
        studio.vote(study_id, rater, item.question_id, choice)
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    *values, path, info = organiser.predict("en", study_id, api_name="/study_improve")
    shown = dict(zip(forms.form_fields(), values))
    assert (shown["method"], shown["init_adapter"]) == ("dpo", str(studio.run_dir(sft)))
    assert path.endswith(f"study-{study_id}-preferences.jsonl") and len(open(path, encoding="utf-8").readlines()) == 2
    assert info.startswith("Prepared a DPO run on the Training tab: 2 preference pairs from 2 of the 3 votes (left "
                           "out: 0 A/B votes on questions the raters split evenly on, 1 ties")
    assert f"It continues run {sft}." in info

    dpo = studio.start(studio.config_from_form(shown).replace(dataset_path=path))
    studio.runner.wait(30)
    name, questions_path, baseline, candidate, line = organiser.predict("zh", dpo, api_name="/study_followup")
    assert (picked(baseline), picked(candidate)) == (sft, dpo) and sft in name and dpo in name
    assert [q["prompt"] for q in studio.studies_questions(questions_path)][0] == "Where is my parcel?"
    assert line.endswith(t("study_followup_seen", "zh"))
    study, _info = organiser.predict("en", name, questions_path, picked(candidate), "logic", "en", False, 0,
                                     baseline=picked(baseline), api_name="/study_create")
    sides = studio.study(picked(study))["sides"]
    assert (sides["baseline"]["run_id"], sides["candidate"]["run_id"]) == (sft, dpo)
