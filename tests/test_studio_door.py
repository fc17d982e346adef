"""Studio's door on the paths a web request can reach: the session's own rows, run ids that stay in runs/,
and run logs that a bad line or a full disk cannot stop."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import EngineError, Studio, TrainConfig
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent
from engine.training.runner import OWNER_FILE, Runner
from tests.conftest import FakeJob


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(count: int, bad: set[int]) -> list[dict]:
    """Alpaca rows numbered 1..count; the rows in `bad` have no answer (an error)."""
    return [{"instruction": f"question {n}?", "output": "" if n in bad else f"answer number {n}, in full."}
            for n in range(1, count + 1)]


def _saved(path: Path) -> list[str]:
    return [json.loads(line)["instruction"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def studio(tmp_path) -> Studio:
    return Studio(tmp_path / "runs", data_root=tmp_path / "data")


CONFIG = TrainConfig(model_name_or_path="no/such-model-offline", eval_split=0.0)


def test_exclude_takes_the_rows_with_errors_out_of_the_rows_the_session_edits(studio, tmp_path):
    source = _write(tmp_path / "a.jsonl", _rows(6, bad={3}))
    studio.open_editor("s1", source)
    studio.edit_dataset("s1", "delete", [1])  # unsaved: question 3 is now at position 2
    excluded = studio.exclude_rows_with_errors("s1", source, CONFIG)
    assert excluded is not None and excluded.count == 1
    assert _saved(excluded.saved) == ["question 2?", "question 4?", "question 5?", "question 6?"]


def test_exclude_opens_the_dataset_the_path_names(studio, tmp_path):
    first = _write(tmp_path / "a.jsonl", _rows(4, bad=set()))
    second = _write(tmp_path / "b.jsonl", _rows(4, bad={2}))
    studio.open_editor("s1", first)
    excluded = studio.exclude_rows_with_errors("s1", second, CONFIG)
    assert excluded.saved.parent.name == "b" and _saved(excluded.saved) == ["question 1?", "question 3?",
                                                                           "question 4?"]
    assert _saved(first) == [f"question {n}?" for n in range(1, 5)]  # the other dataset is untouched
    assert studio.exclude_rows_with_errors("s1", first, CONFIG) is None  # nothing to exclude there


@pytest.mark.parametrize("choice", ["OUTSIDE", "../outside", "run@checkpoint-1/../../x", ""])
def test_an_adapter_choice_is_a_run_id_never_a_path(studio, tmp_path, choice):
    """A folder with a finished run's files outside runs/ (an absolute path reached it before)."""
    outside = tmp_path / "outside"
    (outside / "adapter").mkdir(parents=True)
    (outside / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (outside / "config.yaml").write_text("max_steps: 1\n", encoding="utf-8")
    with pytest.raises(EngineError) as caught:
        studio.adapter_path(str(outside) if choice == "OUTSIDE" else choice)
    assert caught.value.code == "run_not_found"


def test_the_command_line_compares_a_folder_and_names_a_missing_adapter(studio, tmp_path):
    with pytest.raises(EngineError) as caught:
        studio.compare(tmp_path / "no-run", "hello")
    assert caught.value.code == "run_not_found"


@pytest.mark.parametrize("line", [
    '{"seq": 1, "time": 1' + "0" * 400 + ', "kind": "log", "data": {"step": 1}}',
    '{"seq": 1, "time": 1.0, "kind": "log", "data": {"step": 1, "loss": ' + "9" * 400 + '}}',
    '{"seq": 1, "time": 1.0, "kind": "log", "data": ' + "[" * 100_000 + "]" * 100_000 + "}",
])
def test_json_that_is_no_event_is_skipped_and_the_studio_starts(tmp_path, line):
    run = tmp_path / "runs" / "odd"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    good = StatusEvent(RunState.LOADING, rows=3)
    (run / "events.jsonl").write_text(EventLog().append(good).to_json() + "\n" + line + "\n", encoding="utf-8")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    [summary] = studio.list_runs()
    assert summary.state is RunState.INTERRUPTED and summary.skipped_lines == 1


def test_a_log_the_disk_cannot_take_keeps_its_events_and_goes_on(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.append(StatusEvent(RunState.TRAINING, max_steps=3))
    log._path = tmp_path  # a folder: every write fails as on a full disk
    log.append(LogEvent(1, loss=2.0))
    log.append(LogEvent(2, loss=1.5))
    assert log.write_failures == 2 and [e.seq for e in log.since(0)[0]] == [0, 1, 2]
    log._path = path  # space again: the next line is whole and readable
    log.append(StatusEvent(RunState.DONE))
    again = EventLog.read(path)
    assert [type(e).__name__ for e in again.since(0)[0]] == ["StatusEvent", "StatusEvent"] and again.skipped == 0


def test_a_line_another_process_is_still_writing_is_not_reported(tmp_path):
    import os
    import threading

    run = tmp_path / "runs" / "live"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    done = EventLog().append(StatusEvent(RunState.TRAINING, max_steps=3)).to_json()
    (run / "events.jsonl").write_text(done + "\n" + '{"seq": 1, "time": 1.0, "ki', encoding="utf-8")
    (run / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")  # its owner is alive
    runner = Runner(tmp_path / "runs", lambda *a: FakeJob(*a), threading.Lock())
    assert runner.snapshot("live").skipped_lines == 0 and runner.snapshot("live").state is RunState.TRAINING
    (run / OWNER_FILE).unlink()  # the owner died: the torn line is what it left
    assert runner.snapshot("live").skipped_lines == 1
