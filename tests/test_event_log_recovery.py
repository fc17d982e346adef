"""A run's events.jsonl with torn or bad lines: skipped and counted, reported once, never rewritten."""
from __future__ import annotations

import json
import logging

import pytest

from engine.config import TrainConfig
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from engine.training.events import ErrorEvent, EventLog, LogEvent, RunState, StatusEvent
from tests.conftest import FakeJob

GOOD = [
    '{"seq": 0, "time": 10.0, "kind": "status", "data": {"state": "LOADING", "rows": 120}}',
    '{"seq": 1, "time": 11.0, "kind": "status", "data": {"state": "TRAINING", "max_steps": 8}}',
    '{"seq": 2, "time": 12.0, "kind": "log", "data": {"step": 1, "epoch": 0.125, "max_steps": 8, "loss": 2.0}}',
]
GARBAGE = b"\x00\xff\xfe garbage \x9c\x80 {not json"
UNKNOWN_STATE = b'{"seq": 3, "time": 13.0, "kind": "status", "data": {"state": "PAUSED"}}'
UNKNOWN_KIND = b'{"seq": 4, "time": 14.0, "kind": "checkpoint", "data": {"step": 1}}'
LATER = '{"seq": 5, "time": 15.0, "kind": "log", "data": {"step": 2, "epoch": 0.25, "max_steps": 8, "loss": 1.5}}'


def torn_chinese_line() -> bytes:
    """An error line whose detail is Chinese, cut in the middle of a three-byte character (a crash mid-write)."""
    whole = ErrorEvent("train_failed", {"detail": "显存不足"}, seq=6, time=16.0).to_json().encode("utf-8")
    cut = whole.index("存".encode("utf-8")) + 1
    return whole[:cut]


def write_bad_log(path, last_line_torn: bool = True) -> bytes:
    """GOOD lines, a garbage line, an unknown state, an unknown kind, a good later line, then a torn line."""
    content = b"".join(line.encode("utf-8") + b"\n" for line in GOOD)
    content += GARBAGE + b"\n" + UNKNOWN_STATE + b"\n" + UNKNOWN_KIND + b"\n" + LATER.encode("utf-8") + b"\n"
    if last_line_torn:
        content += torn_chinese_line()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return content


def test_the_torn_line_is_cut_inside_a_character():
    with pytest.raises(UnicodeDecodeError):
        torn_chinese_line().decode("utf-8")


def test_read_skips_and_counts_bad_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    write_bad_log(path)
    log = EventLog.read(path)
    events = log.since(0)[0]
    assert [e.seq for e in events] == [0, 1, 2, 5]
    assert events[:2] == [StatusEvent(RunState.LOADING, rows=120), StatusEvent(RunState.TRAINING, max_steps=8)]
    assert events[3] == LogEvent(2, epoch=0.25, max_steps=8, loss=1.5)
    assert log.skipped == 4  # garbage, unknown state, unknown kind, the torn last line


@pytest.mark.parametrize("line", [b"[1, 2]", b"42", b'{"seq": 1}', b'{"seq": "1", "time": 0, "kind": "progress", '
                                  b'"data": {"message": "m"}}', b'{"seq": 1, "time": 0, "kind": "log", "data": []}',
                                  b'{"seq": 1, "time": 0, "kind": "log", "data": {"step": "two"}}',
                                  b'{"seq": 1, "time": 0, "kind": "log", "data": {"step": 2, "loss": "low"}}',
                                  b'{"seq": 1, "time": 0, "kind": "error", "data": {"code": "x", "params": 3}}'])
def test_read_skips_lines_of_the_wrong_shape(tmp_path, line):
    path = tmp_path / "events.jsonl"
    path.write_bytes(GOOD[0].encode("utf-8") + b"\n" + line + b"\n\n")
    log = EventLog.read(path)
    assert len(log) == 1 and log.skipped == 1  # the blank line is not counted


def test_reopen_appends_without_rewriting(tmp_path):
    path = tmp_path / "events.jsonl"
    before = write_bad_log(path)
    log = EventLog.reopen(path)
    assert path.read_bytes() == before  # opening changes nothing
    appended = log.append(StatusEvent(RunState.INTERRUPTED))
    assert appended.seq == 6  # after the highest readable seq (5), not after the count of events
    log.append(LogEvent(3, loss=1.0))
    after = path.read_bytes()
    assert after.startswith(before)
    new_lines = after[len(before):].split(b"\n")
    # the torn line is left as it was; the first new event starts on its own line
    assert new_lines[0] == b"" and [json.loads(line)["seq"] for line in new_lines[1:] if line] == [6, 7]
    again = EventLog.read(path)
    assert [e.seq for e in again.since(0)[0]] == [0, 1, 2, 5, 6, 7] and again.skipped == 4
    assert again.since(0)[0][-2:] == [StatusEvent(RunState.INTERRUPTED), LogEvent(3, loss=1.0)]


def test_reopen_of_a_clean_file_adds_no_blank_line(tmp_path):
    path = tmp_path / "events.jsonl"
    before = write_bad_log(path, last_line_torn=False)
    EventLog.reopen(path).append(StatusEvent(RunState.INTERRUPTED))
    added = path.read_bytes()[len(before):]
    assert added.count(b"\n") == 1 and json.loads(added)["seq"] == 6


def make_run(root, name: str, last_line_torn: bool = True) -> bytes:
    run_dir = root / name
    content = write_bad_log(run_dir / "events.jsonl", last_line_torn)
    (run_dir / "config.yaml").write_text(TrainConfig(dataset_path=str(SAMPLE_DATASET)).to_yaml(), encoding="utf-8")
    (run_dir / "owner.pid").write_text("999999999", encoding="utf-8")  # the process that trained it is gone
    return content


def runner_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "engine.training.runner" and r.levelno == logging.WARNING]


def test_the_app_starts_with_bad_lines_and_reports_them_once(tmp_path, caplog):
    root = tmp_path / "runs"
    before = make_run(root, "torn")
    caplog.set_level(logging.WARNING, logger="engine.training.runner")
    studio = Studio(root, job_factory=FakeJob, data_root=tmp_path / "data")  # recovers interrupted runs

    [summary] = studio.list_runs()
    assert summary.run_id == "torn" and summary.state is RunState.INTERRUPTED and summary.skipped_lines == 4
    assert (summary.step, summary.last_loss) == (2, 1.5)
    for _poll in range(3):  # the Training tab polls: every poll reads the file again
        studio.list_runs()
        assert studio.snapshot("torn").skipped_lines == 4
        studio.events_since("torn", 0)
    assert len(runner_warnings(caplog)) == 1
    # the file was only appended to: the INTERRUPTED status after the torn line
    after = (root / "torn" / "events.jsonl").read_bytes()
    assert after.startswith(before)
    added = [json.loads(line) for line in after[len(before):].split(b"\n") if line]
    assert [(e["seq"], e["kind"], e["data"]) for e in added] == [(6, "status", {"state": "INTERRUPTED"})]


def test_a_finished_run_with_bad_lines_is_left_untouched(tmp_path, caplog):
    root = tmp_path / "runs"
    before = make_run(root, "done", last_line_torn=False)
    with (root / "done" / "events.jsonl").open("ab") as fh:
        fh.write(b'{"seq": 6, "time": 16.0, "kind": "status", "data": {"state": "DONE"}}\n')
    before += b'{"seq": 6, "time": 16.0, "kind": "status", "data": {"state": "DONE"}}\n'
    caplog.set_level(logging.WARNING, logger="engine.training.runner")
    studio = Studio(root, job_factory=FakeJob, data_root=tmp_path / "data")
    assert [(s.run_id, s.state, s.skipped_lines) for s in studio.list_runs()] == [("done", RunState.DONE, 3)]
    studio.list_runs()
    assert (root / "done" / "events.jsonl").read_bytes() == before
    assert len(runner_warnings(caplog)) == 1


def test_resume_after_bad_lines_continues_the_file(tmp_path, caplog):
    root = tmp_path / "runs"
    before = make_run(root, "torn")
    checkpoint = root / "torn" / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}", encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="engine.training.runner")
    studio = Studio(root, job_factory=lambda *a: FakeJob(*a, steps=4, delay=0.0), data_root=tmp_path / "data")
    studio.resume("torn")
    assert studio.runner.wait(20) is RunState.DONE
    after = (root / "torn" / "events.jsonl").read_bytes()
    assert after.startswith(before)
    events = EventLog.read(root / "torn" / "events.jsonl").since(0)[0]
    assert [e.step for e in events if e.kind == "log"] == [1, 2, 3, 4]
    assert [e.seq for e in events] == [0, 1, 2, 5, *range(6, 6 + len(events) - 4)]
    assert studio.snapshot("torn").skipped_lines == 4
    assert len(runner_warnings(caplog)) == 1


def test_a_run_killed_while_saving_resumes_from_its_last_complete_checkpoint(tmp_path):
    """Killed mid-save: checkpoint-3 has its weights but no trainer_state.json, the adapter is still in its hidden
    staging folder. Neither is offered; resume continues from checkpoint-2."""
    root = tmp_path / "runs"
    make_run(root, "killed")
    for step in (2, 3):
        checkpoint = root / "killed" / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "adapter_config.json").write_text("{}", encoding="utf-8")
    (root / "killed" / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}", encoding="utf-8")
    staging = root / "killed" / ".adapter.tmp-x1"
    staging.mkdir()
    (staging / "adapter_config.json").write_text("{}", encoding="utf-8")
    studio = Studio(root, job_factory=lambda *a: FakeJob(*a, steps=4, delay=0.0), data_root=tmp_path / "data")
    [summary] = studio.list_runs()
    assert summary.state is RunState.INTERRUPTED and summary.can_resume and not summary.has_adapter
    assert [c.value for c in studio.adapter_choices()] == ["killed@checkpoint-2"]
    studio.resume("killed")
    assert studio.runner.wait(20) is RunState.DONE
    events = EventLog.read(root / "killed" / "events.jsonl").since(0)[0]
    loading = [e for e in events if e.kind == "status" and e.state is RunState.LOADING]
    assert loading[-1].resumed_from == "checkpoint-2"
    assert [e.step for e in events[events.index(loading[-1]):] if e.kind == "log"] == [3, 4]
