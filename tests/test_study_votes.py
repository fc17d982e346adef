"""A study's states (draft, open, paused, closed), changed votes that supersede the earlier ones, going back to
the previous item, references shown on request, and files made with the schema before these."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine import MAX_COMMENT, STUDY_STATES, render_error
from engine.errors import EngineError
from engine.study.stats import summarize
from engine.study.store import StudyStore
from tests.test_study import FakeChatModel, make_questions, pick


@pytest.fixture
def store(tmp_path) -> StudyStore:
    return StudyStore(tmp_path / "studies.db")


def ready_study(store: StudyStore, n: int = 4, **kwargs) -> int:
    study_id = store.create_study("demo", make_questions(n), "runs/r1", {}, seed=3, **kwargs)
    store.generate(study_id, FakeChatModel())
    return study_id


# states ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state, code", [("draft", "study_not_open"), ("paused", "study_paused"),
                                         ("closed", "study_closed")])
def test_votes_and_skips_are_refused_unless_the_study_is_open(store, state, code):
    study_id = ready_study(store, state="draft")
    rater = store.invite_rater(study_id, "r").rater_id
    if state != "draft":
        store.set_study_state(study_id, state)
    item = store.next_item(study_id, rater)  # reading works in any state
    assert item is not None
    for call in (lambda: store.vote(study_id, rater, item.question_id, "A"),
                 lambda: store.skip(study_id, rater, item.question_id)):
        with pytest.raises(EngineError) as err:
            call()
        assert err.value.code == code and err.value.params["name"] == "demo"
    assert store.results(study_id) == [] and store.next_item(study_id, rater) == item
    assert store.rater_progress(study_id)[0].last_active is None
    store.set_study_state(study_id, "open")
    store.vote(study_id, rater, item.question_id, "A")
    assert len(store.results(study_id)) == 1


def test_a_comment_over_the_cap_is_refused_worded_and_stores_nothing(store):
    study_id = ready_study(store)
    rater = store.invite_rater(study_id, "r").rater_id
    item = store.next_item(study_id, rater)
    assert MAX_COMMENT == 4000
    with pytest.raises(EngineError) as err:
        store.vote(study_id, rater, item.question_id, "A", comment="x" * (MAX_COMMENT + 1))
    assert err.value.code == "study_comment_too_long"
    assert err.value.params == {"length": MAX_COMMENT + 1, "max": MAX_COMMENT}
    assert "4001 characters" in render_error(err.value, "en") and "at most 4000" in render_error(err.value, "en")
    assert "不超过 4000 个字符" in render_error(err.value, "zh")
    assert store.results(study_id) == [] and store.rater_progress(study_id)[0].last_active is None
    store.vote(study_id, rater, item.question_id, "A", comment="字" * MAX_COMMENT)
    assert [v["comment"] for v in store.results(study_id)] == ["字" * MAX_COMMENT]


def test_state_changes_follow_the_rules(store):
    assert STUDY_STATES == ("draft", "open", "paused", "closed")
    pending = store.create_study("p", make_questions(2), "runs/r1", {}, state="draft")
    with pytest.raises(EngineError) as err:
        store.set_study_state(pending, "open")
    assert (err.value.code, err.value.hint) == ("study_open_pending", "hint_study_generate")
    assert store.study(pending)["state"] == "draft"
    study_id = ready_study(store, state="draft")
    for state in ("open", "paused", "open", "closed", "paused", "closed", "open"):
        store.set_study_state(study_id, state)
        assert store.study(study_id)["state"] == state
        assert [s["state"] for s in store.studies() if s["id"] == study_id] == [state]
    for state, code in (("draft", "study_back_to_draft"), ("archived", "study_bad_state")):
        with pytest.raises(EngineError) as err:
            store.set_study_state(study_id, state)
        assert err.value.code == code
    assert store.study(study_id)["state"] == "open"
    with pytest.raises(EngineError) as err:
        store.set_study_state(999, "closed")
    assert err.value.code == "study_not_found"


def test_a_token_reports_the_study_state(store):
    study_id = ready_study(store)
    token = store.invite_rater(study_id, "r").token
    store.set_study_state(study_id, "closed")
    assert store.rater_for_invitation(token).state == "closed"


# superseding votes -------------------------------------------------------------------------------
def test_a_changed_vote_keeps_both_rows_and_only_the_latest_counts(store, tmp_path):
    study_id = ready_study(store, n=3)
    rater = store.invite_rater(study_id, "r").rater_id
    items = []
    while (item := store.next_item(study_id, rater)) is not None:
        items.append(item)
        store.vote(study_id, rater, item.question_id, pick(item, "expert"), scores={"A": {"logic": 2}})
    changed = items[0]
    new_id = store.vote(study_id, rater, changed.question_id, pick(changed, "generic"),
                        scores={"B": {"logic": 5}}, comment="second thoughts")
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute("SELECT id, choice, comment FROM votes WHERE question_id = ? ORDER BY id",
                            (changed.question_id,)).fetchall()
    assert len(rows) == 2 and rows[1] == (new_id, pick(changed, "generic"), "second thoughts")
    results = store.results(study_id)
    assert len(results) == 3
    latest = [r for r in results if r["question_id"] == changed.question_id]
    assert [(r["vote_id"], r["adapter_outcome"], r["comment"]) for r in latest] == [(new_id, "loss",
                                                                                    "second thoughts")]
    assert store.study(study_id)["votes"] == 3 and store.raters(study_id)[0]["votes"] == 3
    assert summarize(results)["overall"]["loss"]["count"] == 1
    assert store.next_item(study_id, rater) is None
    store.export_votes(study_id, tmp_path / "votes.jsonl", "jsonl")
    assert len((tmp_path / "votes.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    assert len(store.preference_pairs(study_id, per_vote=True)) == 3
    assert store.preference_pairs(study_id)[0]["chosen"].startswith("generic")


def test_superseded_votes_of_one_rater_leave_other_raters_alone(store):
    study_id = ready_study(store, n=1)
    raters = [store.invite_rater(study_id, name).rater_id for name in ("a", "b")]
    question = store.questions(study_id)[0]["id"]
    for choice in ("A", "B", "tie"):
        store.vote(study_id, raters[0], question, choice)
    store.vote(study_id, raters[1], question, "both_bad")
    assert sorted(r["choice"] for r in store.results(study_id)) == ["both_bad", "tie"]


# going back --------------------------------------------------------------------------------------
def test_previous_item_walks_back_in_the_order_first_judged(store):
    study_id = ready_study(store, n=4)
    rater = store.invite_rater(study_id, "r").rater_id
    assert store.previous_item(study_id, rater) is None
    judged = []
    for choice in ("A", "B", "tie"):
        item = store.next_item(study_id, rater)
        judged.append(item)
        store.vote(study_id, rater, item.question_id, choice, scores={"A": {"format": 4}}, comment=choice)
    upcoming = store.next_item(study_id, rater)
    last = store.previous_item(study_id, rater)
    assert last.question_id == judged[-1].question_id and last.given == {
        "choice": "tie", "scores": {"A": {"format": 4}}, "comment": "tie"}
    assert (last.answer_a, last.answer_b, last.done, last.total) == (judged[-1].answer_a, judged[-1].answer_b, 3, 4)
    assert store.previous_item(study_id, rater, (upcoming.question_id, False)).question_id == last.question_id
    middle = store.previous_item(study_id, rater, (last.question_id, False))
    first = store.previous_item(study_id, rater, (middle.question_id, middle.repeat))
    assert [middle.question_id, first.question_id] == [judged[1].question_id, judged[0].question_id]
    assert store.previous_item(study_id, rater, (first.question_id, False)) is None
    store.vote(study_id, rater, first.question_id, "both_bad")  # changing it keeps its place in the order
    assert store.previous_item(study_id, rater, (middle.question_id, False)).given["choice"] == "both_bad"
    assert store.previous_item(study_id, rater).question_id == judged[-1].question_id
    assert store.next_item(study_id, rater) == upcoming


def test_going_back_is_as_blind_as_going_on(store, monkeypatch):
    from engine.study import database

    study_id = ready_study(store, n=2)
    rater = store.invite_rater(study_id, "r").rater_id
    item = store.next_item(study_id, rater)
    store.vote(study_id, rater, item.question_id, "A")
    tables: set[str] = set()
    real_connect = sqlite3.connect

    def authorizer(action, table, *_):
        if action == sqlite3.SQLITE_READ:
            tables.add(table)
        return sqlite3.SQLITE_OK

    def tracing_connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_authorizer(authorizer)
        return conn

    monkeypatch.setattr(database.sqlite3, "connect", tracing_connect)
    back = store.previous_item(study_id, rater)
    monkeypatch.undo()
    assert back.question_id == item.question_id and back.given["choice"] == "A"
    assert "votes" in tables and not {"blinding", "answers"} & tables


def test_previous_item_of_a_repeat_shows_its_swapped_sides(store):
    study_id = ready_study(store, n=5, repeats=1)
    rater = store.invite_rater(study_id, "r").rater_id
    while (item := store.next_item(study_id, rater)) is not None:
        store.vote(study_id, rater, item.question_id, "A", repeat=item.repeat)
        if item.repeat:
            break
    back = store.previous_item(study_id, rater)
    assert back.repeat and (back.answer_a, back.answer_b) == (item.answer_a, item.answer_b)
    assert back.given["scores"] is None


def test_references_are_shown_only_when_the_study_shows_them(store):
    questions = [{"prompt": "Q?", "reference": "the reference"}]
    for show, expected in ((True, "the reference"), (False, None)):
        study_id = store.create_study(f"s{show}", questions, "runs/r1", {}, show_reference=show)
        store.generate(study_id, FakeChatModel())
        rater = store.invite_rater(study_id, "r").rater_id
        item = store.next_item(study_id, rater)
        assert item.reference == expected
        store.vote(study_id, rater, item.question_id, "A")
        assert store.previous_item(study_id, rater).reference == expected


# files from before -------------------------------------------------------------------------------
WAVE1_FILE = Path(__file__).parent / "data" / "studies-wave1.sql"  # schema and rows of a wave-1 studies.db


def old_file(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(WAVE1_FILE.read_text(encoding="utf-8"))
    conn.close()


def test_a_file_from_before_is_migrated_when_opened(tmp_path):
    path = tmp_path / "studies.db"
    old_file(path)
    store = StudyStore(path)
    info = store.study(1)
    assert (info["state"], info["lang"], info["show_reference"], info["votes"]) == ("open", "en", False, 1)
    assert [(r["vote_id"], r["rater"], r["adapter_outcome"], r["adapter_scores"], r["comment"])
            for r in store.results(1)] == [(7, "Ann", "win", {"logic": 5}, "good")]
    assert [(p.name, p.done, p.total, p.last_active, p.revoked) for p in store.rater_progress(1)] == [
        ("Ann", 1, 2, None, False)]
    changed = store.vote(1, 1, 1, "B")  # the old constraint is gone: a changed vote is a new row
    assert changed == 41  # ids are never handed out twice, not even the deleted one's
    assert [r["vote_id"] for r in store.results(1)] == [41]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 2
        assert not [row for row in conn.execute("PRAGMA index_list(votes)") if row[3] == "u"]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(raters)")}
    assert {"domain", "token_hash", "revoked", "last_active"} <= columns
    invitation = store.invite_rater(1, "Bob")
    assert store.rater_for_invitation(invitation.token).study_name == "old"
    reopened = StudyStore(path)  # migrating again changes nothing
    assert [r["vote_id"] for r in reopened.results(1)] == [41] and len(reopened.rater_progress(1)) == 2


def test_a_failed_migration_leaves_the_old_file_as_it_was(tmp_path, monkeypatch):
    from engine.study import database

    path = tmp_path / "studies.db"
    old_file(path)
    monkeypatch.setattr(database, "VOTE_COLUMNS", database.VOTE_COLUMNS + ", no_such_column")
    with pytest.raises(sqlite3.OperationalError):
        StudyStore(path)
    with sqlite3.connect(path) as conn:
        assert "state" not in {row[1] for row in conn.execute("PRAGMA table_info(studies)")}
        assert [row for row in conn.execute("PRAGMA index_list(votes)") if row[3] == "u"]
        assert conn.execute("SELECT id FROM votes").fetchall() == [(7,)]
    conn.close()
