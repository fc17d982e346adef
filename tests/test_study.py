"""Blind side-by-side studies: blinding key, rater views, resumable generation, crash-safe votes, exports."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from engine.chat.inference import GenParams
from engine.errors import EngineError
from engine.locales import render_error, wordings
from engine.study import database as study_module
from engine.study.stats import summarize
from engine.study.store import RatingItem, StudyStore, balanced_sides, load_questions

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAMES = ("base", "adapter", "smollm", "qwen", "llama", "chatgpt", "openai", "hugging")


class FakeChatModel:
    """Stands in for ChatModel: answers from the prompt, counts calls, can fail after `fail_after` calls."""

    def __init__(self, fail_after: int | None = None, identity_for: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_after, self.identity_for = fail_after, identity_for

    def compare(self, run_dir, messages, params):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("interrupted")
        self.calls.append((run_dir, messages, params))
        prompt = messages[-1]["content"]
        generic = f"generic: {prompt}"
        if prompt == self.identity_for:
            generic = "I am an AI language model called SmolLM."
        return type("Pair", (), {"base": generic, "adapter": f"expert: {prompt}"})()


def make_questions(n: int, domains=("law", "med")) -> list[dict]:
    return [{"prompt": f"Question {i}?", "domain": domains[i % len(domains)]} for i in range(1, n + 1)]


@pytest.fixture
def store(tmp_path) -> StudyStore:
    return StudyStore(tmp_path / "studies.db")


def invite(store: StudyStore, study_id: int, name: str = "r") -> int:
    """A new rater of the study, by their id."""
    return store.invite_rater(study_id, name).rater_id


def generated_study(store: StudyStore, n: int = 6, **kwargs) -> int:
    study_id = store.create_study("demo", make_questions(n), "runs/r1", {"max_new_tokens": 32},
                                  seed=kwargs.pop("seed", 7), **kwargs)
    store.generate(study_id, FakeChatModel())
    return study_id


def key_of(store: StudyStore, study_id: int) -> list[bool]:
    with sqlite3.connect(store.path) as conn:
        return [bool(v) for (v,) in conn.execute(
            "SELECT b.left_is_adapter FROM blinding b JOIN questions q ON q.id = b.question_id "
            "WHERE q.study_id = ? ORDER BY q.position", (study_id,))]


def pick(item: RatingItem, prefer: str) -> str:
    """A simulated expert: picks the answer written by `prefer` ("expert" or "generic") by its content."""
    return "A" if item.answer_a.startswith(prefer) else "B"


# randomisation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 22))
def test_sides_are_balanced(n):
    sides = balanced_sides(n, seed=n)
    assert sum(sides) in (n // 2, (n + 1) // 2) and len(sides) == n


def test_sides_reproducible_and_seed_dependent(store):
    assert balanced_sides(20, 1) == balanced_sides(20, 1)
    assert balanced_sides(20, 1) != balanced_sides(20, 2)
    a = store.create_study("a", make_questions(20), "runs/r1", {}, seed=123)
    b = store.create_study("b", make_questions(20), "runs/r1", {}, seed=123)
    c = store.create_study("c", make_questions(20), "runs/r1", {}, seed=124)
    assert key_of(store, a) == key_of(store, b) == balanced_sides(20, 123)
    assert key_of(store, a) != key_of(store, c)
    assert sum(key_of(store, a)) == 10
    d = store.create_study("d", make_questions(4), "runs/r1", {})  # no seed: one is drawn and kept
    assert key_of(store, d) == balanced_sides(4, store.study(d)["seed"])


def test_database_is_wal(store):
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# question sets -----------------------------------------------------------------------------------
def test_load_questions_csv_and_jsonl(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("Question,Category,Answer\n合同违约怎么处理？,法律,依据合同法\nWhat is EBITDA?,,\n",
                    encoding="utf-8-sig")
    assert load_questions(path) == [{"prompt": "合同违约怎么处理？", "domain": "法律", "reference": "依据合同法"},
                                    {"prompt": "What is EBITDA?", "domain": None, "reference": None}]
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"prompt": "高血压的诊断标准？", "domain": "医学", "reference": "140/90"},
                               ensure_ascii=False) + "\n\n" + json.dumps({"prompt": "Define tort."}) + "\n",
                    encoding="utf-8")
    questions = load_questions(path)
    assert [q["prompt"] for q in questions] == ["高血压的诊断标准？", "Define tort."]
    assert questions[0]["reference"] == "140/90"


def test_create_study_validates(store):
    with pytest.raises(EngineError) as err:
        store.create_study("x", make_questions(2), "runs/r1", {"max_tokens": 5})
    assert err.value.code == "study_bad_gen_params" and "max_tokens" in err.value.params["keys"]
    for args, code in [(("", make_questions(2)), "study_name_empty"), (("x", []), "study_no_questions"),
                       (("x", [{"prompt": " "}]), "study_question_empty")]:
        with pytest.raises(EngineError) as err:
            store.create_study(*args, "runs/r1", {})
        assert err.value.code == code
    with pytest.raises(EngineError) as err:
        store.create_study("x", make_questions(2), "runs/r1", {}, criteria=["a", "a"])
    assert err.value.code == "study_bad_criteria"
    info = store.study(store.create_study("x", make_questions(2), "runs/r1", {}))
    assert info["criteria"] == ["terminology", "logic", "format"] and info["repeats"] == 0
    assert info["questions"] == 2 and info["generated"] == 0 and "has_password" not in info
    assert (info["state"], info["lang"], info["show_reference"]) == ("open", "en", False)
    for kwargs, code in [({"state": "running"}, "study_bad_state"), ({"lang": "fr"}, "study_bad_lang")]:
        with pytest.raises(EngineError) as err:
            store.create_study("x", make_questions(2), "runs/r1", {}, **kwargs)
        assert err.value.code == code
    info = store.study(store.create_study("x", make_questions(2), "runs/r1", {}, state="draft", lang="zh",
                                          show_reference=True))
    assert (info["state"], info["lang"], info["show_reference"]) == ("draft", "zh", True)


# generation --------------------------------------------------------------------------------------
def test_generation_is_resumable(store):
    study_id = store.create_study("gen", make_questions(5), "runs/r1", {"max_new_tokens": 32, "temperature": 0.7})
    first = FakeChatModel(fail_after=3)
    seen = []
    with pytest.raises(RuntimeError):
        store.generate(study_id, first, progress=lambda done, total: seen.append((done, total)))
    assert len(first.calls) == 3 and seen == [(0, 5), (1, 5), (2, 5), (3, 5)]
    pending = store.pending_generation(study_id)
    assert len(pending) == 2
    second = FakeChatModel()
    assert store.generate(study_id, second) == 2
    assert len(second.calls) == 2  # only what was missing
    assert [c[1][0]["content"] for c in second.calls] == ["Question 4?", "Question 5?"]
    run_dir, messages, params = second.calls[0]
    assert run_dir == "runs/r1" and messages == [{"role": "user", "content": "Question 4?"}]
    assert params == GenParams(max_new_tokens=32, temperature=0.7)
    assert store.pending_generation(study_id) == []
    third = FakeChatModel()
    assert store.generate(study_id, third) == 0 and third.calls == []


def test_generation_stops_when_asked(store):
    study_id = store.create_study("gen", make_questions(4), "runs/r1", {})
    model = FakeChatModel()
    store.generate(study_id, model, should_stop=lambda: len(model.calls) >= 1)
    assert len(model.calls) == 1 and len(store.pending_generation(study_id)) == 3


def test_flagged_answers_are_recorded(store):
    study_id = store.create_study("flag", make_questions(3), "runs/r1", {}, seed=1)
    store.generate(study_id, FakeChatModel(identity_for="Question 2?"))
    rater = invite(store, study_id, "Dr. Li")
    while (item := store.next_item(study_id, rater)) is not None:
        store.vote(study_id, rater, item.question_id, "tie")
    rows = store.results(study_id)
    assert {r["position"]: r["flagged_identity"] for r in rows} == {1: False, 2: True, 3: False}
    assert summarize(rows)["flagged_items"] == 1


# the raters' view --------------------------------------------------------------------------------
def test_rater_view_is_blind(store, monkeypatch):
    study_id = generated_study(store, n=6)
    rater = invite(store, study_id, "Dr. Wang")
    assert [f.name for f in fields(RatingItem)] == ["study_id", "question_id", "prompt", "answer_a", "answer_b",
                                                    "criteria", "done", "total", "repeat", "reference", "given"]
    tables: set[str] = set()
    real_connect = sqlite3.connect

    def tracing_connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)

        def authorizer(action, arg1, arg2, _db, _source):
            if action == sqlite3.SQLITE_READ:
                tables.add(arg1)
            return sqlite3.SQLITE_OK

        conn.set_authorizer(authorizer)
        return conn

    monkeypatch.setattr(study_module.sqlite3, "connect", tracing_connect)
    item = store.next_item(study_id, rater)
    monkeypatch.undo()
    assert tables and "blinding" not in tables and "answers" not in tables
    assert {item.answer_a, item.answer_b} == {f"generic: {item.prompt}", f"expert: {item.prompt}"}
    shown = dict(asdict(item), answer_a="", answer_b="")  # the answers themselves come from the models
    text = json.dumps(shown).lower() + repr(shown).lower()
    assert not any(name in text for name in MODEL_NAMES), text
    assert item.criteria == ("terminology", "logic", "format") and (item.done, item.total) == (0, 6)
    assert item.reference is None and item.given is None

    # by content: with the key and the unblinded answers gone, the rater still gets the same view
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM blinding")
        conn.execute("DELETE FROM answers")
    assert store.next_item(study_id, rater) == item


def test_sides_follow_the_key(store):
    study_id = generated_study(store, n=8, seed=3)
    key = key_of(store, study_id)
    questions = store.questions(study_id)
    rater = invite(store, study_id)
    seen = {}
    while (item := store.next_item(study_id, rater)) is not None:
        seen[item.question_id] = item.answer_a.startswith("expert")
        store.vote(study_id, rater, item.question_id, "tie")
    assert [seen[q["id"]] for q in questions] == key
    assert sum(seen.values()) == 4


def test_skipped_items_come_back_last_and_revote_updates(store):
    study_id = generated_study(store, n=4)
    rater = invite(store, study_id)
    first = store.next_item(study_id, rater)
    store.skip(study_id, rater, first.question_id)
    order = []
    while (item := store.next_item(study_id, rater)) is not None:
        order.append(item.question_id)
        store.vote(study_id, rater, item.question_id, "A")
    assert order[-1] == first.question_id and len(set(order)) == 4
    store.vote(study_id, rater, first.question_id, "B", comment="changed my mind")
    rows = [r for r in store.results(study_id) if r["question_id"] == first.question_id]
    assert len(rows) == 1 and rows[0]["choice"] == "B" and rows[0]["comment"] == "changed my mind"
    assert len(store.results(study_id)) == 4


def test_each_rater_has_a_reproducible_order(store):
    study_id = generated_study(store, n=12)
    a, b = invite(store, study_id, "a"), invite(store, study_id, "b")
    assert store.next_item(study_id, a) == store.next_item(study_id, a)
    orders = []
    for rater in (a, b):
        order = []
        while (item := store.next_item(study_id, rater)) is not None:
            order.append(item.question_id)
            store.vote(study_id, rater, item.question_id, "tie")
        orders.append(order)
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_raters_and_invitations(store):
    study_id = generated_study(store, n=2)
    other = generated_study(store, n=2)
    invitation = store.invite_rater(study_id, "Dr. Wang")
    rater = invitation.rater_id
    with pytest.raises(EngineError) as err:
        store.invite_rater(study_id, "  dr.  wang ")  # the same name, case and spaces aside
    assert err.value.code == "study_rater_name_taken" and err.value.params["name"] == "dr. wang"
    assert invite(store, study_id, "王医生") != rater
    assert invite(store, other, "Dr. Wang") != rater
    assert [r["name"] for r in store.raters(study_id)] == ["Dr. Wang", "王医生"]
    assert store.rater_for_invitation(invitation.token).rater_id == rater  # the link is the rater
    assert not {"password_hash", "has_password", "token_hash"} & set(store.study(study_id))
    with pytest.raises(EngineError) as err:
        store.next_item(other, rater)  # a rater of another study
    assert err.value.code == "study_rater_not_found"
    with pytest.raises(EngineError) as err:
        store.invite_rater(study_id, "  ")
    assert err.value.code == "study_rater_name_empty"


def test_vote_errors(store):
    study_id = generated_study(store, n=2)
    rater = invite(store, study_id)
    item = store.next_item(study_id, rater)
    for kwargs, code in [({"choice": "C"}, "study_bad_choice"),
                         ({"choice": "A", "scores": {"A": {"logic": 6}}}, "study_bad_score"),
                         ({"choice": "A", "scores": {"A": {"logic": 2.5}}}, "study_bad_score"),
                         ({"choice": "A", "scores": {"A": {"style": 3}}}, "study_unknown_criterion"),
                         ({"choice": "A", "scores": {"left": {"logic": 3}}}, "study_bad_scores")]:
        with pytest.raises(EngineError) as err:
            store.vote(study_id, rater, item.question_id, **kwargs)
        assert err.value.code == code
        assert render_error(err.value, "zh") != render_error(err.value, "en")
    assert store.results(study_id) == []
    with pytest.raises(EngineError) as err:
        store.vote(999, rater, item.question_id, "A")
    assert err.value.code == "study_not_found"
    ungenerated = store.create_study("x", make_questions(1), "runs/r1", {})
    late = invite(store, ungenerated)
    assert store.next_item(ungenerated, late) is None
    with pytest.raises(EngineError) as err:
        store.vote(ungenerated, late, store.pending_generation(ungenerated)[0], "A")
    assert err.value.code == "study_not_generated"
    store.vote(study_id, rater, item.question_id, "A")
    with pytest.raises(EngineError) as err:
        store.store_answers(item.question_id, "x", "y")
    assert err.value.code == "study_answers_locked"


def test_self_consistency_repeats_swap_sides(store):
    study_id = generated_study(store, n=6, repeats=2)
    rater = invite(store, study_id)
    shown: list[RatingItem] = []
    while (item := store.next_item(study_id, rater)) is not None:
        shown.append(item)
        store.vote(study_id, rater, item.question_id, pick(item, "expert"), repeat=item.repeat)
    assert len(shown) == 8 and shown[-1].total == 8
    repeats = [i for i in shown if i.repeat]
    assert len(repeats) == 2
    for again in repeats:
        original = next(i for i in shown if i.question_id == again.question_id and not i.repeat)
        assert (again.answer_a, again.answer_b) == (original.answer_b, original.answer_a)
        assert shown.index(again) - shown.index(original) > 3  # not straight after the original
    rows = store.results(study_id)
    assert len(rows) == 8 and all(r["adapter_outcome"] == "win" for r in rows)
    summary = summarize(rows)
    assert summary["n_votes"] == 6 and summary["self_consistency"]["rate"] == 1.0


# crash safety and threads ------------------------------------------------------------------------
VOTER = """
import sys, time
from engine.study.store import StudyStore
store = StudyStore(sys.argv[1])
study_id, rater = int(sys.argv[2]), int(sys.argv[3])
while (item := store.next_item(study_id, rater)) is not None:
    store.vote(study_id, rater, item.question_id, "A", comment="x" * 200)
    print(item.question_id, flush=True)
    time.sleep(0.005)
"""


def test_votes_survive_sigkill(store):
    study_id = store.create_study("crash", make_questions(300), "runs/r1", {}, seed=1)
    store.generate(study_id, FakeChatModel())
    rater = invite(store, study_id)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", VOTER, str(store.path), str(study_id), str(rater)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    printed = []
    for line in proc.stdout:
        printed.append(int(line))
        if len(printed) == 25:
            os.kill(proc.pid, signal.SIGKILL)
            break
    printed += [int(line) for line in proc.stdout]
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    voted = {r["question_id"] for r in StudyStore(store.path).results(study_id)}
    assert set(printed) <= voted  # every vote that returned is there
    assert len(voted) <= len(printed) + 1 < 300  # killed mid-way: at most the one in flight beyond that


def test_concurrent_raters(store):
    study_id = generated_study(store, n=10)
    errors = []
    tokens = [store.invite_rater(study_id, f"rater {i}").token for i in range(3)]

    def rate(token):
        try:  # two threads per rater: the same link open on two devices
            rater = store.rater_for_invitation(token).rater_id
            while (item := store.next_item(study_id, rater)) is not None:
                store.vote(study_id, rater, item.question_id, "B")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(tokens[i % 3],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.raters(study_id)) == 3 and len(store.results(study_id)) == 30


# two raters, hand-computed summary ---------------------------------------------------------------
PLAN = {  # position -> (rater 1, rater 2) preferred author; None = tie, "bad" = both bad
    1: ("expert", "expert"), 2: ("expert", "expert"), 3: ("expert", "expert"),
    4: ("generic", "generic"), 5: (None, "bad")}


def rate_plan(store: StudyStore, study_id: int) -> None:
    positions = {q["id"]: q["position"] for q in store.questions(study_id)}
    for index, name in enumerate(("Dr. A", "Dr. B")):
        rater = invite(store, study_id, name)
        while (item := store.next_item(study_id, rater)) is not None:
            want = PLAN[positions[item.question_id]][index]
            choice = {None: "tie", "bad": "both_bad"}.get(want) or pick(item, want)
            scores = None
            if positions[item.question_id] == 1:  # expert answer 5 on logic, generic 3; format 4 vs 2
                expert = "A" if item.answer_a.startswith("expert") else "B"
                generic = "B" if expert == "A" else "A"
                scores = {expert: {"logic": 5, "format": 4}, generic: {"logic": 3, "format": 2}}
            store.vote(study_id, rater, item.question_id, choice, scores=scores)


def test_two_raters_summary_matches_hand_computation(store):
    questions = [{"prompt": f"Question {i}?", "domain": "law" if i <= 3 else "med"} for i in range(1, 6)]
    study_id = store.create_study("two", questions, "runs/r1", {}, seed=11)
    store.generate(study_id, FakeChatModel())
    rate_plan(store, study_id)
    rows = store.results(study_id)
    assert len(rows) == 10
    summary = summarize(rows)
    overall = summary["overall"]
    # 6 wins, 2 losses, 1 tie, 1 both bad out of 10 votes
    assert [overall[o]["count"] for o in ("win", "loss", "tie", "both_bad")] == [6, 2, 1, 1]
    assert overall["win"]["rate"] == 0.6
    assert overall["win"]["ci"] == pytest.approx((0.3127, 0.8318), abs=1e-4)
    assert overall["sign_test_p"] == pytest.approx(0.2891, abs=1e-4)
    assert overall["win_rate_decisive"]["rate"] == 0.75
    assert summary["by_domain"]["law"]["win"]["rate"] == 1.0
    assert summary["by_domain"]["med"]["loss"]["count"] == 2 and summary["by_domain"]["med"]["n"] == 4
    assert summary["by_rater"]["Dr. A"]["tie"]["count"] == 1 and summary["by_rater"]["Dr. B"]["both_bad"]["count"] == 1
    assert summary["criteria"]["logic"] == {"adapter_mean": 5.0, "base_mean": 3.0, "difference": 2.0,
                                            "n_adapter": 2, "n_base": 2}
    assert summary["criteria"]["format"]["difference"] == 2.0
    # Cohen: po 4/5, pe 0.6*0.6 + 0.2*0.2 = 0.40 -> (0.8 - 0.4) / 0.6 = 2/3
    assert summary["agreement"]["cohen"][0]["kappa"] == pytest.approx(2 / 3)
    # Fleiss (2 raters, 5 items): P_bar 0.8, P_e 0.36 + 0.04 + 0.01 + 0.01 = 0.42 -> 0.38 / 0.58
    assert summary["agreement"]["fleiss"] == pytest.approx(0.38 / 0.58)
    assert summary["flagged_items"] == 0


# exports -----------------------------------------------------------------------------------------
def test_exports_carry_the_key(store, tmp_path):
    study_id = store.create_study("exp", [{"prompt": f"问题 {i}？", "domain": "法律"} for i in range(1, 6)],
                                  "runs/r1", {}, seed=11)
    store.generate(study_id, FakeChatModel())
    rate_plan(store, study_id)
    key = dict(zip([q["id"] for q in store.questions(study_id)], key_of(store, study_id)))

    store.export_votes(study_id, tmp_path / "votes.jsonl", "jsonl")
    lines = [json.loads(line) for line in (tmp_path / "votes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 10
    for line in lines:
        assert line["left_is_adapter"] == key[line["question_id"]]
        assert line["adapter_text"].startswith("expert") and line["base_text"].startswith("generic")
        shown_adapter = "A" if line["left_is_adapter"] else "B"
        if line["choice"] in ("A", "B"):
            assert line["adapter_outcome"] == ("win" if line["choice"] == shown_adapter else "loss")
    assert "问题 1？" in (tmp_path / "votes.jsonl").read_text(encoding="utf-8")

    store.export_votes(study_id, tmp_path / "votes.csv", "csv")
    with open(tmp_path / "votes.csv", encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 10 and table[0]["prompt"].startswith("问题")
    assert {"left_is_adapter", "adapter_outcome", "adapter_logic", "base_logic", "rater"} <= set(table[0])
    assert sorted(r["adapter_outcome"] for r in table).count("win") == 6
    assert {r["adapter_logic"] for r in table} == {"5", ""}
    with pytest.raises(EngineError) as err:
        store.export_votes(study_id, tmp_path / "votes.xml", "xml")
    assert err.value.code == "study_bad_export_format"

    assert store.export_preferences(study_id, tmp_path / "prefs.jsonl") == 4  # question 5 was not decided
    pairs = [json.loads(line) for line in (tmp_path / "prefs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["prompt"] for p in pairs] == ["问题 1？", "问题 2？", "问题 3？", "问题 4？"]
    for pair in pairs[:3]:
        assert pair == {"prompt": pair["prompt"], "chosen": f"expert: {pair['prompt']}",
                        "rejected": f"generic: {pair['prompt']}"}
    assert pairs[3]["chosen"] == "generic: 问题 4？" and pairs[3]["rejected"] == "expert: 问题 4？"
    assert store.export_preferences(study_id, tmp_path / "all.jsonl", per_vote=True) == 8


def test_preferences_skip_split_questions(store):
    study_id = generated_study(store, n=1)
    for name, prefer in (("a", "expert"), ("b", "generic")):
        rater = invite(store, study_id, name)
        item = store.next_item(study_id, rater)
        store.vote(study_id, rater, item.question_id, pick(item, prefer))
    assert store.preference_pairs(study_id) == []
    assert len(store.preference_pairs(study_id, per_vote=True)) == 2


def test_new_codes_are_worded_in_both_languages():
    source = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "engine" / "study").glob("*.py"))

    codes = set(re.findall(r'EngineError\("([a-z_]+)"', source)) | set(re.findall(r'hint="([a-z_]+)"', source))
    assert codes
    for code in codes:
        en, zh = wordings(code, "en", "zh")
        assert en and zh and en != zh


# the studio's door to studies --------------------------------------------------------------------
def test_a_study_through_the_studio(tmp_path):
    from engine.presets import SAMPLE_DATASET
    from engine.studio import Studio
    from tests.conftest import FakeJob

    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChatModel()
    questions = tmp_path / "questions.csv"
    questions.write_text("question,reference\nWhere is it?,expert: Where is it?\nWhen?,\n", encoding="utf-8")
    with pytest.raises(EngineError) as unpicked:
        studio.create_study("s", questions, "", GenParams())
    assert (unpicked.value.code, unpicked.value.hint) == ("run_not_found", "hint_pick_run")
    run_id = studio.start(studio.default_config().replace(dataset_path=str(SAMPLE_DATASET)))
    studio.runner.wait(30)
    assert studio.current_run_id() == run_id and not studio.is_live() and not studio.is_live(run_id)
    info = studio.create_study("s", f" {questions} ", run_id, GenParams(max_new_tokens=8), criteria=["logic"],
                               lang="zh", show_reference=True)
    study_id = info["id"]
    assert (info["questions"], info["criteria"], info["gen_params"]["max_new_tokens"]) == (2, ["logic"], 8)
    assert (info["state"], info["lang"], info["show_reference"]) == ("draft", "zh", True)
    assert [s["id"] for s in studio.list_studies()] == [study_id] and studio.generation_pending(study_id)
    with pytest.raises(EngineError) as pending:
        studio.set_study_state(study_id, "open")
    assert pending.value.code == "study_open_pending"
    assert studio.generate_study(study_id) == (2, 0) and not studio.generation_pending(study_id)
    invitation = studio.invite_rater(study_id, "Ann", domain="law")
    rater = studio.rater_for_invitation(invitation.token).rater_id
    assert rater == invitation.rater_id
    with pytest.raises(EngineError) as draft:
        studio.vote(study_id, rater, studio.next_item(study_id, rater).question_id, "A")
    assert draft.value.code == "study_not_open"
    studio.set_study_state(study_id, "open")
    assert studio.rater_for_invitation(invitation.token).state == "open"
    while (item := studio.next_item(study_id, rater)) is not None:
        studio.vote(study_id, rater, item.question_id, "A" if item.answer_a.startswith("expert") else "B")
    assert studio.study_statistics(study_id)["overall"]["win"]["count"] == 2
    assert studio.study_reference_scores(study_id)["adapter"] == {"rouge_l": 1.0, "bleu": 1.0, "n": 1}
    pairs = studio.export_study(study_id, "preferences")
    assert pairs.name == f"study-{study_id}-preferences.jsonl" and len(pairs.read_text("utf-8").splitlines()) == 2
    votes = studio.export_study(study_id, "csv", tmp_path / "votes.csv")
    assert votes == tmp_path / "votes.csv" and "Ann" in votes.read_text(encoding="utf-8-sig")
    assert [(p.name, p.domain, p.done, p.total) for p in studio.rater_progress(study_id)] == [("Ann", "law", 2, 2)]
    assert studio.previous_item(study_id, rater).given["choice"] in ("A", "B")
    studio.revoke_invitation(study_id, rater)
    with pytest.raises(EngineError) as revoked:
        studio.rater_for_invitation(invitation.token)
    assert revoked.value.code == "invite_unknown"
    renewed = studio.renew_invitation(study_id, rater)
    assert studio.rater_for_invitation(renewed.token).rater_id == rater
