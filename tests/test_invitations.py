"""Inviting raters: 128-bit tokens stored only as their hash, revoke and renew, one refusal for every bad link,
each rater's progress and last activity, and a rater confined to their own study."""
from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime

import pytest

from engine import Invitation, RaterPass, RaterProgress
from engine.errors import EngineError
from engine.study.store import StudyStore
from tests.test_study import FakeChatModel, make_questions


@pytest.fixture
def store(tmp_path) -> StudyStore:
    return StudyStore(tmp_path / "studies.db")


def open_study(store: StudyStore, n: int = 4, repeats: int = 0, name: str = "demo") -> int:
    study_id = store.create_study(name, make_questions(n), "runs/r1", {}, seed=5, repeats=repeats)
    store.generate(study_id, FakeChatModel())
    return study_id


def database_bytes(store: StudyStore) -> bytes:
    """The database file and its write-ahead log, as stored on disk."""
    return b"".join(path.read_bytes() for path in sorted(store.path.parent.glob(store.path.name + "*")))


def test_a_token_is_128_random_bits_and_only_its_hash_is_stored(store):
    study_id = open_study(store)
    invitations = [store.invite_rater(study_id, f"rater {i}", domain=" law ") for i in range(5)]
    assert all(isinstance(i, Invitation) for i in invitations)
    assert invitations[0].name == "rater 0" and invitations[0].domain == "law"
    tokens = [i.token for i in invitations]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert len(base64.urlsafe_b64decode(token + "==")) == 16  # 128 bits
    stored = database_bytes(store)
    for token in tokens:
        assert token.encode() not in stored
        assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


def test_a_token_names_its_rater_and_the_study(store):
    study_id = store.create_study("Contracts", make_questions(2), "runs/r1", {}, lang="zh")
    invitation = store.invite_rater(study_id, "Dr. Li")
    assert store.rater_for_invitation(invitation.token) == RaterPass(
        study_id=study_id, rater_id=invitation.rater_id, name="Dr. Li", study_name="Contracts", lang="zh",
        state="open")


@pytest.mark.parametrize("token", ["", None, "short", "x" * 22, "../../etc/passwd", "a" * 5000, 12345,
                                   "' OR 1=1 --"])
def test_any_bad_token_is_one_refusal(store, token):
    invitation = store.invite_rater(open_study(store), "r")
    with pytest.raises(EngineError) as err:
        store.rater_for_invitation(token)
    assert err.value.code == "invite_unknown" and err.value.params == {}
    assert store.rater_for_invitation(invitation.token).rater_id == invitation.rater_id


def test_revoke_stops_the_link_and_keeps_the_votes(store):
    study_id = open_study(store)
    invitation = store.invite_rater(study_id, "r")
    item = store.next_item(study_id, invitation.rater_id)
    store.vote(study_id, invitation.rater_id, item.question_id, "A")
    store.revoke_invitation(study_id, invitation.rater_id)
    with pytest.raises(EngineError) as err:
        store.rater_for_invitation(invitation.token)
    assert err.value.code == "invite_unknown"
    assert len(store.results(study_id)) == 1
    assert store.rater_progress(study_id)[0].revoked


def test_renew_replaces_the_token_and_lifts_a_revocation(store):
    study_id = open_study(store)
    first = store.invite_rater(study_id, "r", domain="med")
    renewed = store.renew_invitation(study_id, first.rater_id)
    assert (renewed.rater_id, renewed.name, renewed.domain) == (first.rater_id, "r", "med")
    assert renewed.token != first.token
    with pytest.raises(EngineError) as err:
        store.rater_for_invitation(first.token)
    assert err.value.code == "invite_unknown"
    assert store.rater_for_invitation(renewed.token).rater_id == first.rater_id
    store.revoke_invitation(study_id, first.rater_id)
    again = store.renew_invitation(study_id, first.rater_id)
    assert store.rater_for_invitation(again.token).rater_id == first.rater_id
    assert not store.rater_progress(study_id)[0].revoked


def test_names_are_unique_per_study_whatever_the_case(store):
    study_id = open_study(store)
    store.invite_rater(study_id, "Ärztin Straße")
    for taken in ("ärztin straße", "ÄRZTIN  STRASSE"):
        with pytest.raises(EngineError) as err:
            store.invite_rater(study_id, taken)
        assert err.value.code == "study_rater_name_taken"
    assert store.invite_rater(open_study(store, name="other"), "Ärztin Straße").name == "Ärztin Straße"


def test_invitation_verbs_refuse_unknown_studies_and_raters(store):
    study_id, other = open_study(store), open_study(store, name="other")
    rater = store.invite_rater(other, "r").rater_id
    with pytest.raises(EngineError) as err:
        store.invite_rater(999, "r")
    assert err.value.code == "study_not_found"
    for verb in (store.renew_invitation, store.revoke_invitation):
        with pytest.raises(EngineError) as err:
            verb(study_id, rater)  # a rater of another study
        assert err.value.code == "study_rater_not_found"
    with pytest.raises(EngineError) as err:
        store.rater_progress(999)
    assert err.value.code == "study_not_found"


def test_a_rater_cannot_vote_or_skip_in_another_study(store):
    mine, theirs = open_study(store), open_study(store, name="other")
    rater = store.invite_rater(mine, "r").rater_id
    foreign = store.questions(theirs)[0]["id"]
    for call in (lambda: store.vote(mine, rater, foreign, "A"), lambda: store.skip(mine, rater, foreign)):
        with pytest.raises(EngineError) as err:
            call()
        assert err.value.code == "study_question_not_found"
    for call in (lambda: store.vote(theirs, rater, foreign, "A"), lambda: store.skip(theirs, rater, foreign)):
        with pytest.raises(EngineError) as err:
            call()
        assert err.value.code == "study_rater_not_found"
    assert store.results(mine) == [] and store.results(theirs) == []


def test_progress_counts_the_latest_judgements_of_every_item(store):
    study_id = open_study(store, n=5, repeats=2)
    ann, bob = (store.invite_rater(study_id, name, domain=domain) for name, domain in (("Ann", "law"), ("Bob", None)))
    for _ in range(3):
        item = store.next_item(study_id, ann.rater_id)
        store.vote(study_id, ann.rater_id, item.question_id, "A", repeat=item.repeat)
    store.vote(study_id, ann.rater_id, item.question_id, "B", repeat=item.repeat)  # a changed vote: still 3
    skipped = store.next_item(study_id, bob.rater_id)
    store.skip(study_id, bob.rater_id, skipped.question_id)
    progress = store.rater_progress(study_id)
    assert all(isinstance(p, RaterProgress) for p in progress)
    assert [(p.rater_id, p.name, p.domain, p.done, p.total, p.revoked) for p in progress] == [
        (ann.rater_id, "Ann", "law", 3, 7, False), (bob.rater_id, "Bob", None, 0, 7, False)]
    assert progress[0].done == store.next_item(study_id, ann.rater_id).done
    assert progress[0].total == store.next_item(study_id, ann.rater_id).total
    assert [r["votes"] for r in store.raters(study_id)] == [3, 0]
    assert store.study(study_id)["votes"] == 3


def test_last_activity_moves_with_votes_and_skips(store, monkeypatch):
    from engine.study import rating

    study_id = open_study(store)
    rater = store.invite_rater(study_id, "r").rater_id
    assert store.rater_progress(study_id)[0].last_active is None
    clock = iter(["2030-01-01T10:00:00+00:00", "2030-01-01T10:05:00+00:00"])
    monkeypatch.setattr(rating, "now", lambda: next(clock))
    item = store.next_item(study_id, rater)
    store.vote(study_id, rater, item.question_id, "A")
    assert store.rater_progress(study_id)[0].last_active == "2030-01-01T10:00:00+00:00"
    store.skip(study_id, rater, store.next_item(study_id, rater).question_id)
    assert store.rater_progress(study_id)[0].last_active == "2030-01-01T10:05:00+00:00"
    monkeypatch.undo()
    before = time.time()
    store.vote(study_id, rater, item.question_id, "B")
    stamp = datetime.fromisoformat(store.rater_progress(study_id)[0].last_active)
    assert stamp.utcoffset().total_seconds() == 0 and stamp.timestamp() >= int(before)
