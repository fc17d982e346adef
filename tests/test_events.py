"""Typed events and their JSON lines; EventLog: sequence numbers, cursor reads, threads, the events.jsonl mirror,
and snapshot folding."""
from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.training.events import (
    ErrorEvent,
    Event,
    EventLog,
    LogEvent,
    ProgressEvent,
    RunState,
    StatusEvent,
    snapshot,
)


def test_sequence_numbers_start_at_zero_and_are_contiguous():
    log = EventLog()
    events = [log.append(LogEvent(i)) for i in range(5)]
    assert [e.seq for e in events] == [0, 1, 2, 3, 4]
    assert len(log) == 5
    assert [e.step for e in log.since(0)[0]] == [0, 1, 2, 3, 4]


def test_since_cursor_semantics():
    log = EventLog()
    assert log.since(0) == ([], 0)
    for i in range(3):
        log.append(LogEvent(i))
    first, cursor = log.since(0)
    assert [e.seq for e in first] == [0, 1, 2] and cursor == 3
    assert log.since(cursor) == ([], 3)
    log.append(StatusEvent(RunState.DONE))
    newer, cursor2 = log.since(cursor)
    assert [e.seq for e in newer] == [3] and cursor2 == 4
    # a second reader from 0 sees everything: reading consumes nothing
    again, cursor3 = log.since(0)
    assert [e.seq for e in again] == [0, 1, 2, 3] and cursor3 == 4
    assert [e.seq for e in log.since(2)[0]] == [2, 3]


def test_since_with_odd_cursors():
    log = EventLog()
    log.append(LogEvent(1))
    assert [e.seq for e in log.since(-5)[0]] == [0]
    assert log.since(10) == ([], 1)


def test_since_returns_a_copy():
    log = EventLog()
    log.append(LogEvent(1))
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
            log.append(LogEvent(i, tokens_seen=writer))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events, cursor = log.since(0)
    assert cursor == writers * per_writer
    assert [e.seq for e in events] == list(range(writers * per_writer))
    seen = {(e.tokens_seen, e.step) for e in events}  # (writer, i)
    assert len(seen) == writers * per_writer
    for w in range(writers):  # each writer's events stay in its own order
        assert [e.step for e in events if e.tokens_seen == w] == list(range(per_writer))


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
    threads = [threading.Thread(target=lambda: [log.append(LogEvent(i)) for i in range(100)]) for _ in range(4)]
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
    log.append(StatusEvent(RunState.LOADING, rows=3))
    log.append(ProgressEvent(message="progress_load_model"))
    log.append(LogEvent(1, loss=1.5))
    log.append(ErrorEvent("train_failed", {"detail": "中文"}))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert json.loads(lines[2]) == {"seq": 2, "time": log.since(0)[0][2].time, "kind": "log",
                                    "data": {"step": 1, "loss": 1.5}}
    assert "中文" in lines[3]  # written as UTF-8, not escaped
    loaded = EventLog.read(path)
    assert loaded.since(0)[0] == log.since(0)[0]
    assert [(e.seq, e.time) for e in loaded.since(0)[0]] == [(e.seq, e.time) for e in log.since(0)[0]]


def test_read_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.append(StatusEvent(RunState.LOADING))
    log.append(StatusEvent(RunState.TRAINING, max_steps=4))
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"seq": 2, "time": 1.0, "kind": "lo')
    loaded = EventLog.read(path)
    assert [e.seq for e in loaded.since(0)[0]] == [0, 1]
    assert snapshot("r", loaded.since(0)[0]).state is RunState.TRAINING
    assert loaded.skipped == 1


@pytest.mark.parametrize("event", [
    ErrorEvent("train_failed", {"detail": "x"}, seq=3, time=12.5),
    ErrorEvent("busy", seq=0, time=1.0),
    StatusEvent(RunState.LOADING, rows=10, resumed_from="checkpoint-4", seq=1, time=2.0),
    StatusEvent(RunState.TRAINING, max_steps=20, seq=2, time=3.0),
    ProgressEvent("progress_load_model", seq=4, time=5.0),
    LogEvent(7, epoch=0.5, max_steps=20, loss=1.25, eval_loss=1.5, learning_rate=2e-4, grad_norm=0.3,
             mean_token_accuracy=0.6, entropy=1.1, tokens_per_second=812.5, tokens_seen=4096, memory_mb=321.5,
             peak_memory_mb=400.0, seq=5, time=6.0),
])
def test_event_json_round_trip(event):
    again = Event.from_json(event.to_json())
    assert again == event and type(again) is type(event)
    assert (again.seq, again.time) == (event.seq, event.time)


def test_a_line_without_data_is_not_an_event():
    """Every kind has a required field now: a line without `data` is refused (EventLog.read skips it)."""
    with pytest.raises(ValueError):
        Event.from_json('{"seq": 0, "time": 0, "kind": "status"}')
    assert Event.from_json('{"seq": 0, "time": 0, "kind": "progress", "data": {"message": "m"}}') == ProgressEvent("m")


def test_lines_of_the_previous_version_still_load():
    """Literal lines as the previous version wrote them (`kind` + `data` dict), one per kind."""
    lines = [
        '{"seq": 0, "time": 1700000000.25, "kind": "status", "data": {"state": "LOADING", "rows": 120}}',
        '{"seq": 1, "time": 1700000001.0, "kind": "progress", "data": {"message": "progress_load_model"}}',
        '{"seq": 2, "time": 1700000002.0, "kind": "status", "data": {"state": "TRAINING", "max_steps": 4}}',
        '{"seq": 3, "time": 1700000003.0, "kind": "log", "data": {"step": 1, "epoch": 0.25, "max_steps": 4, '
        '"loss": 2.5, "learning_rate": 0.0001, "grad_norm": null, "tokens_per_second": 812.4, "tokens_seen": 400, '
        '"memory_mb": 123.5}}',
        '{"seq": 4, "time": 1700000004.0, "kind": "error", "data": {"code": "train_failed", '
        '"params": {"detail": "boom"}, "hint": "hint_debug"}}',
        '{"seq": 5, "time": 1700000005.0, "kind": "status", "data": {"state": "LOADING", "rows": 120, '
        '"resumed_from": "checkpoint-2"}}',
    ]
    events = [Event.from_json(line) for line in lines]
    assert events[:3] == [StatusEvent(RunState.LOADING, rows=120), ProgressEvent("progress_load_model"),
                          StatusEvent(RunState.TRAINING, max_steps=4)]
    log = events[3]
    assert isinstance(log, LogEvent) and (log.seq, log.time) == (3, 1700000003.0)
    assert (log.step, log.epoch, log.max_steps, log.loss, log.learning_rate) == (1, 0.25, 4, 2.5, 1e-4)
    assert math.isnan(log.grad_norm)  # null: reported, not finite
    assert (log.tokens_per_second, log.tokens_seen, log.memory_mb, log.eval_loss) == (812.4, 400, 123.5, None)
    assert events[4] == ErrorEvent("train_failed", {"detail": "boom"}, "hint_debug")
    assert events[5].resumed_from == "checkpoint-2"
    # written back, a line says the same as the old one
    for line, event in zip(lines, events):
        assert json.loads(event.to_json()) == json.loads(line)


def test_run_state_liveness():
    assert {s for s in RunState if s.is_live} == {RunState.LOADING, RunState.TRAINING, RunState.SAVING}


def test_snapshot_of_nothing():
    snap = snapshot(None, [])
    assert snap.state is RunState.IDLE and snap.step == 0 and snap.last_loss is None and snap.error is None
    assert snap.skipped_lines == 0


def test_snapshot_folding():
    log = EventLog()
    log.append(StatusEvent(RunState.LOADING, rows=10))
    log.append(ProgressEvent("progress_load_model"))
    log.append(StatusEvent(RunState.TRAINING, max_steps=20))
    log.append(LogEvent(1, epoch=0.1, loss=2.0, learning_rate=1e-4))
    log.append(LogEvent(5, epoch=0.5, loss=1.5))
    log.append(LogEvent(5, epoch=0.5, eval_loss=1.7))
    log.append(LogEvent(6, epoch=0.6, grad_norm=0.3))
    snap = snapshot("run-1", log.since(0)[0])
    assert snap.run_id == "run-1"
    assert snap.state is RunState.TRAINING
    assert (snap.step, snap.max_steps, snap.epoch) == (6, 20, 0.6)
    assert snap.last_loss == 1.5  # a log without loss keeps the last one
    assert snap.last_eval_loss == 1.7
    log.append(StatusEvent(RunState.SAVING))
    log.append(StatusEvent(RunState.DONE))
    done = snapshot("run-1", log.since(0)[0])
    assert done.state is RunState.DONE and done.max_steps == 20 and done.error is None


def test_snapshot_of_a_failure():
    log = EventLog()
    log.append(StatusEvent(RunState.LOADING))
    log.append(ErrorEvent("train_failed", {"detail": "boom"}, "hint_debug"))
    log.append(StatusEvent(RunState.FAILED))
    snap = snapshot("r", log.since(0)[0])
    assert snap.state is RunState.FAILED
    assert snap.error == ErrorEvent("train_failed", {"detail": "boom"}, "hint_debug")
    assert snap.error.to_error() == EngineError("train_failed", {"detail": "boom"}, hint="hint_debug")


def test_error_event_from_an_engine_error_keeps_plain_params():
    event = ErrorEvent.from_error(EngineError("model_offline", {"name": "m", "path": Path("/x"), "n": 2}, hint="h"))
    assert event == ErrorEvent("model_offline", {"name": "m", "path": "/x", "n": 2}, "h")
    assert event.to_error().params == {"name": "m", "path": "/x", "n": 2}


def test_snapshot_reads_a_non_finite_loss_as_unknown():
    log = EventLog()
    log.append(LogEvent(1, epoch=0.1, loss=2.0))
    log.append(LogEvent(2, loss=math.nan))
    snap = snapshot("r", log.since(0)[0])
    assert snap.last_loss is None and (snap.step, snap.epoch) == (2, 0.1)


@pytest.mark.parametrize("state", [s.value for s in RunState])
def test_snapshot_accepts_every_state(state):
    log = EventLog()
    log.append(StatusEvent(RunState(state)))
    assert snapshot(None, log.since(0)[0]).state.value == state
    assert Event.from_json(log.since(0)[0][0].to_json()).state.value == state


def test_status_and_error_lines_are_synced_to_the_disk_when_appended(tmp_path, monkeypatch):
    """Where a run stands survives a power cut: a status or error line is on the disk (flushed, then fsynced)
    before append returns; log and progress lines, one per step, are not synced (an fsync per step is slow)."""
    from engine.training import events

    path = tmp_path / "events.jsonl"
    synced = []
    real_fsync = events.os.fsync

    def fsync(fd):
        synced.append(path.read_bytes().splitlines()[-1])  # the line was flushed before the sync
        real_fsync(fd)

    monkeypatch.setattr(events.os, "fsync", fsync)
    log = EventLog(path)
    log.append(StatusEvent(RunState.TRAINING, max_steps=2))
    log.append(ProgressEvent("progress_load_model"))
    log.append(LogEvent(1, loss=2.0))
    log.append(ErrorEvent("out_of_memory", hint="hint_reduce_memory"))
    log.append(StatusEvent(RunState.FAILED))
    assert [json.loads(line)["kind"] for line in synced] == ["status", "error", "status"]
    assert [json.loads(line)["seq"] for line in synced] == [0, 3, 4]
    durable = (StatusEvent.durable, ErrorEvent.durable, LogEvent.durable, ProgressEvent.durable)
    assert durable == (True, True, False, False)


def test_a_failed_sync_counts_as_a_write_failure_and_the_run_goes_on(tmp_path, monkeypatch):
    from engine.training import events

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(events.os, "fsync", fail)
    log = EventLog(tmp_path / "events.jsonl")
    log.append(StatusEvent(RunState.TRAINING))
    log.append(LogEvent(1, loss=2.0))
    assert log.write_failures == 1 and [e.seq for e in log.since(0)[0]] == [0, 1]
    monkeypatch.undo()
    log.append(StatusEvent(RunState.DONE))
    assert [e.kind for e in EventLog.read(tmp_path / "events.jsonl").since(0)[0]] == ["status", "log", "status"]
