"""Any two sides in chat and studies, both answers streamed at once, and the votes -> DPO -> next study loop's
engine (fast: folders shaped like runs, fake chat models, and the bundled model's real tokenizer)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import engine
from engine import cli
from engine.chat import sides
from engine.chat.inference import AnswerPair, GenParams, shares_batch
from engine.chat.streaming import REPLACEMENT, RowsStreamer, whole_answer
from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.errors import EngineError
from engine.locales import render
from engine.models import loader
from engine.studio import Studio
from engine.study.store import StudyStore
from engine.training.adapters import BASE_CHOICE, choice_of, split_choice
from tests.test_study_votes import old_file

QUESTIONS = ["Where is my parcel?", "退货怎么办？", "Can I pay later?", "Do you ship abroad?"]


def fake_run(runs: Path, name: str, model: str = BUNDLED_MODEL_ID, **settings) -> Path:
    """A folder shaped like a finished run (config, final adapter, a complete checkpoint at step 2); loads nothing."""
    run = runs / name
    for adapter in (run / "adapter", run / "checkpoints" / "checkpoint-2"):
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}", encoding="utf-8")
    (run / "config.yaml").write_text(TrainConfig(model_name_or_path=model, **settings).to_yaml(), encoding="utf-8")
    return run


class RecordingChat:
    """Stands in for ChatModel: records the sides it is asked for and answers as each side."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def compare_batch(self, run_dir, conversations, params, baseline=None):
        self.calls.append({"run_dir": run_dir, "baseline": baseline})
        return [AnswerPair(base=f"{Path(baseline).name if baseline else 'base'}: {c[-1]['content']}",
                           adapter=f"{Path(run_dir).name}: {c[-1]['content']}") for c in conversations]

    def stream_compare(self, run_dir, messages, params, adapter_messages=None, baseline=None):
        self.calls.append({"run_dir": run_dir, "baseline": baseline})
        yield "b", "a"

    def stream_answer(self, run_dir, messages, params, side="adapter", baseline=None):
        self.calls.append({"run_dir": run_dir, "baseline": baseline, "side": side})
        yield "a"


@pytest.fixture
def studio(tmp_path) -> Studio:
    runs = tmp_path / "runs"
    fake_run(runs, "sft")
    fake_run(runs, "dpo", init_adapter=str(runs / "sft"))
    fake_run(runs, "other", model="org/another-model")
    made = Studio(runs, data_root=tmp_path / "data")
    made.chat = RecordingChat()
    return made


@pytest.fixture
def questions_file(tmp_path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "reference": "ref"}, ensure_ascii=False) + "\n"
                            for q in QUESTIONS), encoding="utf-8")
    return path


# ---- the streamer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    return loader.load_tokenizer(loader.resolve_model(BUNDLED_MODEL_ID))


def test_the_streamer_never_shows_a_split_chinese_character(tokenizer):
    text = "您好，请问退货怎么办？"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert any(tokenizer.decode(ids[:n]).endswith(REPLACEMENT) for n in range(1, len(ids)))  # tokens split them
    import torch

    streamer = RowsStreamer(tokenizer, rows=1, timeout=5)
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    shown = [texts[0] for texts in streamer]
    assert shown[-1] == text and all(REPLACEMENT not in piece for piece in shown)
    assert all(text.startswith(piece) for piece in shown) and len(set(shown)) > 3  # it grows, character by character


def test_a_character_the_token_limit_cuts_off_is_left_out_of_the_finished_answer(tokenizer):
    import torch

    text = "您好，请问退货怎么办？"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    cut = next(n for n in range(1, len(ids))  # mid-character, after a whole one
               if tokenizer.decode(ids[:n]).endswith(REPLACEMENT) and tokenizer.decode(ids[:n]).strip(REPLACEMENT))
    streamer = RowsStreamer(tokenizer, rows=1, timeout=5)
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
    for token in ids[:cut]:  # generation stopped mid-character
        streamer.put(torch.tensor([token]))
    streamer.end()
    finished = [texts[0] for texts in streamer][-1]
    assert finished == whole_answer(tokenizer.decode(ids[:cut])) and REPLACEMENT not in finished
    assert text.startswith(finished) and finished
    assert whole_answer(f" 好的{REPLACEMENT}{REPLACEMENT} ") == "好的"
    assert whole_answer(f"a{REPLACEMENT}b") == f"a{REPLACEMENT}b"  # the model's own stray byte, inside, stays


def test_the_streamer_grows_both_rows_together_and_ends_with_the_whole_answers(tokenizer):
    import torch

    first, second = (tokenizer(t, add_special_tokens=False).input_ids for t in ("Hello there, friend", "退货？"))
    pad = tokenizer.pad_token_id
    streamer = RowsStreamer(tokenizer, rows=2, timeout=5)
    streamer.put(torch.tensor([[7, 8], [9, 10]]))
    length = max(len(first), len(second))
    for step in range(length):
        column = [row[step] if step < len(row) else pad for row in (first, second)]
        streamer.put(torch.tensor(column))
    streamer.end()
    steps = list(streamer)
    assert steps[-1] == ("Hello there, friend", "退货？")
    assert any(left and right and (left, right) != steps[-1] for left, right in steps)
    assert all(REPLACEMENT not in left + right for left, right in steps)


def test_sides_saved_with_another_chat_template_do_not_share_a_batch(tokenizer):
    import copy

    other = copy.deepcopy(tokenizer)
    assert shares_batch(tokenizer, tokenizer) and shares_batch(tokenizer, other)
    other.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert not shares_batch(tokenizer, other)  # then each side is generated with its own tokenizer


def test_a_failed_generation_ends_the_stream(tokenizer):
    streamer = RowsStreamer(tokenizer, rows=2, timeout=5)
    streamer.fail()
    assert list(streamer) == []


# ---- sides ----------------------------------------------------------------------------------
def test_the_base_choice_is_public_and_collides_with_no_run_id(studio, tmp_path):
    assert engine.BASE_CHOICE == BASE_CHOICE == "@base" and split_choice(BASE_CHOICE) == (BASE_CHOICE, None)
    assert studio.side_path(BASE_CHOICE) is None
    assert studio.side_path("sft@checkpoint-2") == tmp_path / "runs" / "sft" / "checkpoints" / "checkpoint-2"
    assert choice_of(tmp_path / "runs" / "sft") == "sft"
    assert choice_of(tmp_path / "runs" / "sft" / "checkpoints" / "checkpoint-2") == "sft@checkpoint-2"


def test_two_sides_must_differ_and_share_their_base_model(studio, tmp_path):
    runs = tmp_path / "runs"
    sides.sources(runs / "dpo", runs / "sft")
    sides.sources(runs / "sft", runs / "sft" / "checkpoints" / "checkpoint-2")
    for candidate, baseline, code in ((runs / "sft", runs / "sft", "sides_identical"), (None, None, "sides_identical"),
                                      (runs / "sft", runs / "other", "sides_different_base")):
        with pytest.raises(EngineError) as refused:
            sides.sources(candidate, baseline)
        assert refused.value.code == code
        english, chinese = (render(code, refused.value.params, lang) for lang in ("en", "zh"))
        assert english != chinese and "{" not in english + chinese
        assert render(refused.value.hint, None, "en") != render(refused.value.hint, None, "zh")
    assert "org/another-model" in render("sides_different_base", refused.value.params, "en")


def test_chat_passes_the_baseline_side_to_the_model(studio, tmp_path):
    runs = tmp_path / "runs"
    assert list(studio.stream_compare("dpo", "hi", GenParams(), baseline="sft")) == [("b", "a")]
    assert studio.chat.calls[-1] == {"run_dir": runs / "dpo", "baseline": runs / "sft"}
    list(studio.stream_compare("dpo", "hi"))
    assert studio.chat.calls[-1] == {"run_dir": runs / "dpo", "baseline": None}  # the base model by default
    list(studio.stream_answer("dpo", [{"role": "user", "content": "hi"}], GenParams(), "base", "sft@checkpoint-2"))
    assert studio.chat.calls[-1]["baseline"] == runs / "sft" / "checkpoints" / "checkpoint-2"
    with pytest.raises(EngineError) as unknown:
        list(studio.stream_compare("dpo", "hi", baseline="../sft"))  # a choice, never a path from the request
    assert unknown.value.code == "run_not_found"


def test_the_chat_command_takes_a_baseline_and_keeps_its_json(studio, tmp_path, monkeypatch, capsys):
    runs, calls = tmp_path / "runs", []

    class Chat:
        def compare(self, run_dir, messages, params=GenParams(), baseline=None):
            calls.append((Path(run_dir), baseline))
            return AnswerPair(base="sft says", adapter="dpo says")

    studio.chat = Chat()
    monkeypatch.setattr(engine, "Studio", lambda: studio)
    argv = ["chat", "--run", str(runs / "dpo"), "--baseline", str(runs / "sft"), "--prompt", "hi"]
    assert cli.main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"base": "sft says", "adapter": "dpo says"}
    assert calls == [(runs / "dpo", runs / "sft")]
    assert cli.main([*argv, "--lang", "zh"]) == 0
    assert capsys.readouterr().out.startswith(f"== 基线 {runs / 'sft'} ==\nsft says")


# ---- studies of two sides -------------------------------------------------------------------
def voted_study(studio: Studio, questions_file: Path, choices: list[str], **sides_chosen) -> int:
    """A generated, open study of the sides with one rater's votes (`choices` as shown, one per question)."""
    study_id = studio.create_study("two sides", questions_file, "dpo", GenParams(max_new_tokens=8),
                                   **sides_chosen)["id"]
    studio.generate_study(study_id)
    studio.set_study_state(study_id, "open")
    rater = studio.invite_rater(study_id, "Ann").rater_id
    for choice in choices:
        item = studio.next_item(study_id, rater)
        studio.vote(study_id, rater, item.question_id, choice)
    return study_id


def test_a_study_names_its_two_sides_and_generates_with_both(studio, questions_file, tmp_path):
    runs = tmp_path / "runs"
    study_id = voted_study(studio, questions_file, ["A", "B", "tie", "both_bad"], baseline="sft@checkpoint-2")
    info = studio.study(study_id)
    assert info["baseline_dir"] == str(runs / "sft" / "checkpoints" / "checkpoint-2")
    assert info["sides"] == {
        "baseline": {"choice": "sft@checkpoint-2", "run_id": "sft", "step": 2, "model": BUNDLED_MODEL_ID},
        "candidate": {"choice": "dpo", "run_id": "dpo", "step": None, "model": BUNDLED_MODEL_ID}}
    assert studio.chat.calls[0] == {"run_dir": str(runs / "dpo"), "baseline": info["baseline_dir"]}
    pair = studio.studies.answer_pairs(study_id)[0]
    assert pair["base"].startswith("checkpoint-2: ") and pair["adapter"].startswith("dpo: ")
    assert studio.list_studies()[0]["sides"] == info["sides"]
    plain = studio.create_study("against the base", questions_file, "sft")
    assert plain["baseline_dir"] is None and plain["sides"]["baseline"] == {
        "choice": BASE_CHOICE, "run_id": None, "step": None, "model": BUNDLED_MODEL_ID}
    for baseline, code in (("dpo", "sides_identical"), ("other", "sides_different_base")):
        with pytest.raises(EngineError) as refused:
            studio.create_study("refused", questions_file, "dpo", baseline=baseline)
        assert refused.value.code == code


def test_the_votes_exports_name_both_sides(studio, questions_file, tmp_path):
    study_id = voted_study(studio, questions_file, ["A", "B"], baseline="sft")
    rows = [json.loads(line) for line in studio.export_study(study_id, "jsonl").read_text("utf-8").splitlines()]
    assert {(row["baseline"], row["candidate"]) for row in rows} == {("sft", "dpo")}
    with studio.export_study(study_id, "csv").open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {(row["baseline"], row["candidate"]) for row in table} == {("sft", "dpo")}
    empty = studio.create_study("no votes", questions_file, "sft")["id"]
    with studio.export_study(empty, "csv").open(encoding="utf-8-sig") as handle:
        assert {"baseline", "candidate"} <= set(next(csv.reader(handle)))
    assert studio.study_statistics(study_id)["n_votes"] == 2


def test_a_study_file_from_before_reads_as_the_adapter_against_the_base_model(tmp_path):
    path = tmp_path / "studies.db"
    old_file(path)
    info = StudyStore(path).study(1)
    assert info["baseline_dir"] is None and info["sides"]["baseline"]["choice"] == BASE_CHOICE
    assert StudyStore(path).results(1)[0]["baseline"] == BASE_CHOICE


# ---- the loop: votes -> DPO -> the next study ------------------------------------------------
def test_the_votes_become_a_dpo_run_of_the_candidate_adapter(studio, questions_file, tmp_path):
    runs, data = tmp_path / "runs", tmp_path / "data"
    study_id = voted_study(studio, questions_file, ["A", "B", "tie", "both_bad"])
    config, counts = studio.prepare_dpo_from_study(study_id)
    assert counts == {"pairs": 2, "votes": 4, "decided": 2, "split": 0, "ties": 1, "both_bad": 1, "repeats": 0}
    preferences = data / "studies" / f"study-{study_id}-preferences.jsonl"
    pairs = [json.loads(line) for line in preferences.read_text("utf-8").splitlines()]
    assert len(pairs) == 2 and set(pairs[0]) == {"prompt", "chosen", "rejected"}
    questions = [json.loads(line) for line in (data / "studies" / f"study-{study_id}-questions.jsonl")
                 .read_text("utf-8").splitlines()]
    assert [q["prompt"] for q in questions] == QUESTIONS
    assert (config.method, config.init_adapter, config.dataset_path, config.model_name_or_path) == (
        "dpo", str(runs / "dpo"), str(preferences), BUNDLED_MODEL_ID)
    assert config.learning_rate == studio.apply_preset("dpo", TrainConfig()).learning_rate
    assert config.init_adapter == str(runs / "dpo")  # the candidate's folder, the DPO run continues it
    given = studio.prepare_dpo_from_study(study_id, TrainConfig(max_steps=3, model_name_or_path="x/y"))[0]
    assert given.max_steps == 3 and given.model_name_or_path == BUNDLED_MODEL_ID


def test_a_study_without_a_or_b_verdicts_or_with_the_base_as_candidate_is_refused(studio, questions_file):
    undecided = voted_study(studio, questions_file, ["tie", "both_bad", "tie"])
    with pytest.raises(EngineError) as no_pairs:
        studio.prepare_dpo_from_study(undecided)
    assert no_pairs.value.code == "study_no_pairs" and no_pairs.value.hint == "hint_study_more_votes"
    assert no_pairs.value.params == {"study_id": undecided, "ties": 2, "split": 0, "both_bad": 1}
    assert "2" in render("study_no_pairs", no_pairs.value.params, "zh")
    reversed_sides = studio.create_study("base as candidate", questions_file, BASE_CHOICE, baseline="sft")
    assert reversed_sides["sides"]["candidate"]["choice"] == BASE_CHOICE and reversed_sides["run_dir"] == ""
    with pytest.raises(EngineError) as base:
        studio.prepare_dpo_from_study(reversed_sides["id"])
    assert base.value.code == "study_candidate_is_base" and base.value.hint == "hint_study_candidate_adapter"


def test_the_next_study_compares_the_dpo_run_with_the_adapter_it_started_from(studio, questions_file, tmp_path):
    runs = tmp_path / "runs"
    study_id = voted_study(studio, questions_file, ["A", "B"], baseline=BASE_CHOICE)
    config, _counts = studio.prepare_dpo_from_study(study_id)
    fake_run(runs, "dpo2", dataset_path=config.dataset_path, init_adapter=config.init_adapter, method="dpo")
    followup = studio.followup_study("dpo2")
    assert followup == {"name": "dpo ↔ dpo2", "questions_path": str(
        tmp_path / "data" / "studies" / f"study-{study_id}-questions.jsonl"), "choice": "dpo2", "baseline": "dpo",
        "questions_seen_in_training": True}
    nxt = studio.create_study(followup["name"], followup["questions_path"], followup["choice"],
                              baseline=followup["baseline"])
    assert (nxt["sides"]["baseline"]["choice"], nxt["sides"]["candidate"]["choice"]) == ("dpo", "dpo2")
    with pytest.raises(EngineError) as not_dpo:
        studio.followup_study("sft")
    assert not_dpo.value.code == "followup_needs_dpo" and not_dpo.value.hint == "hint_followup_dpo"
    with pytest.raises(EngineError) as unknown:
        studio.followup_study("../sft")
    assert unknown.value.code == "run_not_found"


def test_a_dpo_run_on_a_preference_file_is_followed_up_on_held_out_questions(studio, tmp_path, english_dataset):
    runs = tmp_path / "runs"
    fake_run(runs, "sft-held", dataset_path=str(english_dataset), eval_split=0.2)
    fake_run(runs, "dpo-file", dataset_path=str(tmp_path / "pairs.jsonl"), init_adapter=str(
        runs / "sft-held" / "checkpoints" / "checkpoint-2"), method="dpo")
    followup = studio.followup_study("dpo-file")
    assert followup["baseline"] == "sft-held@checkpoint-2" and followup["questions_seen_in_training"] is False
    held_out = [json.loads(line) for line in Path(followup["questions_path"]).read_text("utf-8").splitlines()]
    assert held_out and all(q["prompt"] and q["reference"] for q in held_out)
