"""EventLog: sequence numbers, cursor reads, threads, the events.jsonl mirror, and snapshot folding."""
from __future__ import annotations

import json
import threading

import pytest

from engine.training.events import Event, EventLog, RunState, snapshot


def test_sequence_numbers_start_at_zero_and_are_contiguous():
    log = EventLog()
    events = [log.append("log", step=i) for i in range(5)]
    assert [e.seq for e in events] == [0, 1, 2, 3, 4]
    assert len(log) == 5
    assert [e.data["step"] for e in log.since(0)[0]] == [0, 1, 2, 3, 4]


def test_since_cursor_semantics():
    log = EventLog()
    assert log.since(0) == ([], 0)
    for i in range(3):
        log.append("log", step=i)
    first, cursor = log.since(0)
    assert [e.seq for e in first] == [0, 1, 2] and cursor == 3
    assert log.since(cursor) == ([], 3)
    log.append("status", state="DONE")
    newer, cursor2 = log.since(cursor)
    assert [e.seq for e in newer] == [3] and cursor2 == 4
    # a second reader from 0 sees everything: reading consumes nothing
    again, cursor3 = log.since(0)
    assert [e.seq for e in again] == [0, 1, 2, 3] and cursor3 == 4
    assert [e.seq for e in log.since(2)[0]] == [2, 3]


def test_since_with_odd_cursors():
    log = EventLog()
    log.append("log", step=1)
    assert [e.seq for e in log.since(-5)[0]] == [0]
    assert log.since(10) == ([], 1)


def test_since_returns_a_copy():
    log = EventLog()
    log.append("log", step=1)
    events, _ = log.since(0)
    events.clear()
    assert len(log.since(0)[0]) == 1


def test_thread_safety():
    log = EventLog()
    writers, per_writer = 8, 250
    barrier = threading.Barrier(writers)

    def write(writer):
        barrier.wait()
        for i in range(per_writer):
            log.append("log", writer=writer, i=i)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events, cursor = log.since(0)
    assert cursor == writers * per_writer
    assert [e.seq for e in events] == list(range(writers * per_writer))
    seen = {(e.data["writer"], e.data["i"]) for e in events}
    assert len(seen) == writers * per_writer
    for w in range(writers):  # each writer's events stay in its own order
        assert [e.data["i"] for e in events if e.data["writer"] == w] == list(range(per_writer))


def test_thread_safety_with_mirror_and_reader(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    stop = threading.Event()
    reader_errors = []

    def read():
        cursor = 0
        while not stop.is_set():
            events, nxt = log.since(cursor)
            if [e.seq for e in events] != list(range(cursor, nxt)):
                reader_errors.append((cursor, nxt))
            cursor = nxt

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=lambda: [log.append("log", i=i) for i in range(100)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reader.join()
    assert reader_errors == []
    seqs = [json.loads(line)["seq"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert seqs == list(range(400))


def test_mirror_and_read_round_trip(tmp_path):
    path = tmp_path / "run" / "events.jsonl"  # the folder is created
    log = EventLog(path)
    log.append("status", state="LOADING", rows=3)
    log.append("progress", message="progress_load_model")
    log.append("log", step=1, loss=1.5, note="中文")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2]) == {"seq": 2, "time": log.since(0)[0][2].time, "kind": "log",
                                    "data": {"step": 1, "loss": 1.5, "note": "中文"}}
    loaded = EventLog.read(path)
    assert loaded.since(0)[0] == log.since(0)[0]


def test_read_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.append("status", state="LOADING")
    log.append("status", state="TRAINING", max_steps=4)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"seq": 2, "time": 1.0, "kind": "lo')
    loaded = EventLog.read(path)
    assert [e.seq for e in loaded.since(0)[0]] == [0, 1]
    assert snapshot("r", loaded.since(0)[0]).state is RunState.TRAINING


def test_event_json_round_trip():
    event = Event(seq=3, time=12.5, kind="error", data={"code": "train_failed", "params": {"detail": "x"}})
    assert Event.from_json(event.to_json()) == event
    assert Event.from_json('{"seq": 0, "time": 0, "kind": "status"}').data == {}


def test_run_state_liveness():
    assert {s for s in RunState if s.is_live} == {RunState.LOADING, RunState.TRAINING, RunState.SAVING}


def test_snapshot_of_nothing():
    snap = snapshot(None, [])
    assert snap.state is RunState.IDLE and snap.step == 0 and snap.last_loss is None and snap.error is None


def test_snapshot_folding():
    log = EventLog()
    log.append("status", state="LOADING", rows=10)
    log.append("progress", message="progress_load_model")
    log.append("status", state="TRAINING", max_steps=20)
    log.append("log", step=1, epoch=0.1, loss=2.0, learning_rate=1e-4)
    log.append("log", step=5, epoch=0.5, loss=1.5)
    log.append("log", step=5, epoch=0.5, eval_loss=1.7)
    log.append("log", step=6, epoch=0.6, grad_norm=0.3)
    snap = snapshot("run-1", log.since(0)[0])
    assert snap.run_id == "run-1"
    assert snap.state is RunState.TRAINING
    assert (snap.step, snap.max_steps, snap.epoch) == (6, 20, 0.6)
    assert snap.last_loss == 1.5  # a log without loss keeps the last one
    assert snap.last_eval_loss == 1.7
    log.append("status", state="SAVING")
    log.append("status", state="DONE")
    done = snapshot("run-1", log.since(0)[0])
    assert done.state is RunState.DONE and done.max_steps == 20 and done.error is None


def test_snapshot_of_a_failure():
    log = EventLog()
    log.append("status", state="LOADING")
    log.append("error", code="train_failed", params={"detail": "boom"}, hint="hint_debug")
    log.append("status", state="FAILED")
    snap = snapshot("r", log.since(0)[0])
    assert snap.state is RunState.FAILED
    assert snap.error == {"code": "train_failed", "params": {"detail": "boom"}, "hint": "hint_debug"}


@pytest.mark.parametrize("state", [s.value for s in RunState])
def test_snapshot_accepts_every_state(state):
    log = EventLog()
    log.append("status", state=state)
    assert snapshot(None, log.since(0)[0]).state.value == state
