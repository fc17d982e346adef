"""Run summaries: what the runs list shows of a run, read again only when the run's files changed."""
from __future__ import annotations

import os

import pytest

from engine.training import adapters
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent
from engine.training.summaries import RunSummaries, RunSummary, fingerprint, summarize


class CountingLoad:
    """Reads a run's events.jsonl as the runner does, counting the reads per run."""

    def __init__(self, root) -> None:
        self.root = root
        self.reads: list[str] = []

    def __call__(self, run_id: str) -> EventLog:
        self.reads.append(run_id)
        return EventLog.read(self.root / run_id / "events.jsonl")


def make_run(root, run_id: str, *states: RunState, steps: int = 2) -> EventLog:
    """A run folder whose log holds LOADING, `steps` logged steps, then `states`."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("max_steps: 4\n", encoding="utf-8")
    log = EventLog(run_dir / "events.jsonl")
    log.append(StatusEvent(RunState.LOADING, rows=3))
    log.append(StatusEvent(RunState.TRAINING, max_steps=4))
    for step in range(1, steps + 1):
        log.append(LogEvent(step, loss=2.0 / step, eval_loss=3.0 / step if step == steps else None))
    for state in states:
        log.append(StatusEvent(state))
    return log


def save_checkpoint(run_dir, step: int, complete: bool = True) -> None:
    folder = run_dir / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if complete:
        (folder / adapters.CHECKPOINT_COMPLETE_FILE).write_text("{}", encoding="utf-8")


def test_a_summary_holds_state_steps_losses_times_adapter_and_resume(tmp_path):
    log = make_run(tmp_path, "r1", RunState.STOPPED)
    run_dir = tmp_path / "r1"
    save_checkpoint(run_dir, 2)
    events = log.since(0)[0]
    summary = summarize("r1", run_dir, EventLog.read(run_dir / "events.jsonl"))
    assert summary == RunSummary("r1", str(run_dir), RunState.STOPPED, events[0].time, False, 1.0,
                                 last_eval_loss=1.5, step=2, duration=events[-1].time - events[0].time,
                                 can_resume=True, skipped_lines=0)


@pytest.mark.parametrize(("states", "checkpoint_complete", "resumable"), [
    ((RunState.STOPPED,), False, False),  # a checkpoint cut short is no place to resume from
    ((RunState.DONE,), True, False),  # a finished run has nothing left to train
    ((), True, False),  # a live run is still training
    ((RunState.FAILED,), True, True),
    ((RunState.INTERRUPTED,), True, True),
])
def test_a_run_can_be_resumed_only_when_it_ended_early_with_a_whole_checkpoint(tmp_path, states, checkpoint_complete,
                                                                              resumable):
    make_run(tmp_path, "r1", *states)
    save_checkpoint(tmp_path / "r1", 2, checkpoint_complete)
    assert summarize("r1", tmp_path / "r1", EventLog.read(tmp_path / "r1" / "events.jsonl")).can_resume is resumable


def test_a_run_without_events_started_when_its_folder_was_made(tmp_path):
    (tmp_path / "r1").mkdir()
    summary = summarize("r1", tmp_path / "r1", EventLog())
    assert summary.started == (tmp_path / "r1").stat().st_mtime and summary.duration == 0.0
    assert (summary.state, summary.step, summary.last_loss) == (RunState.IDLE, 0, None)


def test_unreadable_lines_are_counted_in_the_summary(tmp_path):
    make_run(tmp_path, "r1", RunState.DONE)
    with (tmp_path / "r1" / "events.jsonl").open("ab") as fh:
        fh.write(b"not an event\n")
    summaries = RunSummaries(CountingLoad(tmp_path))
    assert summaries.summary("r1", tmp_path / "r1").skipped_lines == 1


def test_polling_an_unchanged_run_reads_its_events_once(tmp_path):
    make_run(tmp_path, "old", RunState.DONE)
    make_run(tmp_path, "new", RunState.STOPPED)
    load = CountingLoad(tmp_path)
    summaries = RunSummaries(load)
    runs = {"old": tmp_path / "old", "new": tmp_path / "new"}
    first = summaries.newest_first(runs)
    for _tick in range(5):
        assert summaries.newest_first(runs) == first
    assert sorted(load.reads) == ["new", "old"]
    assert [summary.run_id for summary in first] == ["new", "old"]  # newest first


def test_a_run_is_read_again_when_its_log_grew(tmp_path):
    log = make_run(tmp_path, "live")
    load = CountingLoad(tmp_path)
    summaries = RunSummaries(load)
    assert summaries.summary("live", tmp_path / "live").step == 2
    log.append(LogEvent(3, loss=0.5))
    grown = summaries.summary("live", tmp_path / "live")
    assert (grown.step, grown.last_loss, grown.state) == (3, 0.5, RunState.TRAINING)
    log.append(StatusEvent(RunState.DONE))
    assert summaries.summary("live", tmp_path / "live").state is RunState.DONE
    assert summaries.summary("live", tmp_path / "live").state is RunState.DONE
    assert load.reads == ["live"] * 3


def test_a_saved_adapter_or_a_new_checkpoint_is_seen_without_a_new_event(tmp_path):
    make_run(tmp_path, "r1", RunState.STOPPED)
    run_dir = tmp_path / "r1"
    summaries = RunSummaries(CountingLoad(tmp_path))
    before = summaries.summary("r1", run_dir)
    assert not before.has_adapter and not before.can_resume
    save_checkpoint(run_dir, 2)
    assert summaries.summary("r1", run_dir).can_resume
    (run_dir / "adapter").mkdir()
    (run_dir / "adapter" / adapters.ADAPTER_FILE).write_text("{}", encoding="utf-8")
    assert summaries.summary("r1", run_dir).has_adapter


def test_the_fingerprint_changes_with_the_log_even_within_one_clock_tick(tmp_path):
    log = make_run(tmp_path, "r1")
    events_file = tmp_path / "r1" / "events.jsonl"
    before = fingerprint(tmp_path / "r1")
    stamp = events_file.stat()
    log.append(LogEvent(3, loss=0.5))
    os.utime(events_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the same modification time as before
    assert fingerprint(tmp_path / "r1") != before  # the size tells


def test_a_run_gone_from_the_list_is_forgotten_and_read_afresh_if_it_comes_back(tmp_path):
    make_run(tmp_path, "r1", RunState.DONE)
    load = CountingLoad(tmp_path)
    summaries = RunSummaries(load)
    summaries.newest_first({"r1": tmp_path / "r1"})
    assert summaries.newest_first({}) == []
    summaries.newest_first({"r1": tmp_path / "r1"})
    assert load.reads == ["r1", "r1"]
