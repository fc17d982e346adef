"""Training in a worker process of its own, with a fake job (`--job tests.conftest:worker_fake_job`) through a
real process: stop, crashes, another app following the run, the device lock across processes, pid reuse,
`python app.py status`; and, slow, the real bundled model killed mid-run and resumed."""
from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path

import pytest

from engine import cli
from engine.chat.inference import ChatModel
from engine.config import TrainConfig
from engine.errors import EngineError
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from engine.system.device import DeviceLock
from engine.training.adapters import latest_checkpoint
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent
from engine.training.runner import LOCK_FILE, OWNER_FILE, Runner, _new_run_dir
from engine.training.worker import WORKER_FILE, live_worker, process_started
from tests.conftest import FakeJob
from tests.test_run_lifecycle import assert_resumes_to_done

FAKE = "tests.conftest:worker_fake_job"
WAIT = 60  # seconds; a guard against hangs, not a timing assertion


def config() -> TrainConfig:
    return TrainConfig(dataset_path=str(SAMPLE_DATASET))


def worker_runner(root: Path, monkeypatch, shape: str) -> Runner:
    """A runner whose runs train the fake job in real worker processes, shaped by `shape` (see FAKE_JOB)."""
    monkeypatch.setenv("FAKE_JOB", shape)
    return Runner(root, worker_job=FAKE)


def wait_until(condition, timeout: float = WAIT, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def lock_of(root: Path) -> DeviceLock:
    return DeviceLock(root / LOCK_FILE)


def test_a_run_trains_in_a_worker_process_and_a_stop_ends_it_within_a_step(tmp_path, monkeypatch):
    runner = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    run_id = runner.start(config())
    run_dir = tmp_path / run_id
    wait_until(lambda: runner.snapshot(run_id).step >= 3, what="step 3")
    pid = live_worker(run_dir)
    assert pid is not None and pid != os.getpid() and runner.worker_pid(run_id) == pid
    assert lock_of(tmp_path).locked() and lock_of(tmp_path).holder() == run_id  # the worker holds the lock
    assert (run_dir / "rows.jsonl").is_file() and len((run_dir / "rows.jsonl").read_text().splitlines()) == 120
    assert runner.stop() is True
    stopped_at = time.monotonic()
    assert runner.wait(WAIT) is RunState.STOPPED
    assert time.monotonic() - stopped_at < 5  # one step of 0.05 s, and the process's exit
    events = runner.events_since(run_id, 0)[0]
    assert [e.state.value for e in events if e.kind == "status"] == ["LOADING", "TRAINING", "SAVING", "STOPPED"]
    assert [e.seq for e in events] == list(range(len(events)))
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert not runner.is_live() and not lock_of(tmp_path).locked() and live_worker(run_dir) is None
    assert not (run_dir / OWNER_FILE).exists()


def test_a_worker_killed_by_sigkill_fails_as_killed_for_memory_and_frees_the_lock(tmp_path, monkeypatch):
    runner = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    run_id = runner.start(config())
    wait_until(lambda: runner.snapshot(run_id).step >= 2, what="step 2")
    os.kill(runner.worker_pid(run_id), signal.SIGKILL)
    killed = time.monotonic()
    assert runner.wait(WAIT) is RunState.FAILED
    assert time.monotonic() - killed < 5
    error = runner.snapshot(run_id).error
    assert error.code == "killed_out_of_memory" and error.hint == "hint_reduce_memory"
    assert not lock_of(tmp_path).locked()
    assert {s.run_id: s for s in runner.list_runs()}[run_id].can_resume  # its checkpoints are kept


def test_a_worker_that_exits_with_an_error_code_fails_with_the_end_of_train_log(tmp_path, monkeypatch):
    runner = worker_runner(tmp_path, monkeypatch, "steps=20 delay=0.01 exit_at=3 code=7")
    run_id = runner.start(config())
    assert runner.wait(WAIT) is RunState.FAILED
    error = runner.snapshot(run_id).error
    assert error.code == "worker_stopped_unexpectedly" and error.hint == "hint_see_train_log"
    assert error.params["exit"] == "7"
    assert "fake worker: failing on purpose at step 3" in error.params["log_tail"]
    assert "failing on purpose" not in cli.render_error(error.to_error(), "en")  # the log is a click away
    assert not lock_of(tmp_path).locked()


def test_another_gpus_rank_out_of_memory_fails_as_out_of_memory_with_its_traceback_a_click_away(tmp_path):
    from engine.training.launch import record_end

    run_dir = tmp_path / "r1"
    log = EventLog(run_dir / "events.jsonl")
    log.append(StatusEvent(RunState.LOADING))
    log.append(StatusEvent(RunState.TRAINING, max_steps=9))
    (run_dir / "train.log").write_text("[rank1]: Traceback (most recent call last):\n"
                                       "[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB\n"
                                       "W1201 torch.distributed.elastic: sending SIGTERM to rank 0\n", encoding="utf-8")
    record_end(run_dir, 1)  # rank 0 wrote no error of its own: the launcher ended it
    events = EventLog.reopen(run_dir / "events.jsonl").since(0)[0]
    error = events[-2].to_error()
    assert events[-1] == StatusEvent(RunState.FAILED) and error.code == "out_of_memory"
    assert error.hint == "hint_reduce_memory" and "[rank1]: torch.OutOfMemoryError" in error.params["log_tail"]


def test_a_worker_that_ignores_the_stop_is_killed_after_the_grace_period(tmp_path, monkeypatch):
    runner = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05 ignore_stop=1")
    runner.stop_grace = 0.5
    run_id = runner.start(config())
    wait_until(lambda: runner.snapshot(run_id).step >= 2, what="step 2")
    pid = runner.worker_pid(run_id)
    runner.stop()
    assert runner.wait(WAIT) is RunState.STOPPED
    assert process_started(pid) is None and not lock_of(tmp_path).locked()
    assert latest_checkpoint(tmp_path / run_id) is not None  # the last checkpoint is kept, to resume from


def test_another_app_follows_the_live_run_from_its_first_event_and_can_stop_it(tmp_path, monkeypatch):
    first = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    run_id = first.start(config())
    wait_until(lambda: first.snapshot(run_id).step >= 2, what="step 2")

    second = Runner(tmp_path, worker_job=FAKE)  # another app on the same runs folder (it finds the worker)
    assert second.current_run_id == run_id and second.is_live()
    assert {s.run_id: s.state for s in second.list_runs()} == {run_id: RunState.TRAINING}
    seen, cursor = second.events_since(run_id, 0)
    step = second.snapshot(run_id).step
    wait_until(lambda: second.snapshot(run_id).step >= step + 3, what="three more steps")
    later, _cursor = second.events_since(run_id, cursor)
    every = seen + later
    assert [e.seq for e in every] == list(range(len(every)))  # the whole run, no gap
    with pytest.raises(EngineError) as caught:
        second.delete(run_id)
    assert caught.value.code == "run_is_live"

    assert second.stop() is True
    assert second.wait(WAIT) is RunState.STOPPED
    assert first.wait(WAIT) is RunState.STOPPED
    statuses = [e.state.value for e in first.events_since(run_id, 0)[0] if e.kind == "status"]
    assert statuses == ["LOADING", "TRAINING", "SAVING", "STOPPED"]  # recorded once, by the worker


def test_an_app_finds_a_run_started_by_another_process_after_it_started(tmp_path, monkeypatch):
    app = Studio(tmp_path, data_root=tmp_path / "data")  # already running when the CLI starts a run
    assert app.current_run_id() is None and not app.is_live()
    cli_runner = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    run_id = cli_runner.start(config())
    assert app.current_run_id() == run_id and app.is_live(run_id)
    assert app.stop() is True
    assert cli_runner.wait(WAIT) is RunState.STOPPED


def test_a_start_while_another_process_trains_is_busy_naming_the_run(tmp_path, monkeypatch):
    first = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    run_id = first.start(config())
    other = Runner(tmp_path, job_factory=FakeJob)  # its own lock object: only the file lock keeps it out
    for attempt in (lambda: other.start(config()), lambda: first.start(config())):
        with pytest.raises(EngineError) as caught:
            attempt()
        assert caught.value.code == "busy" and caught.value.params == {"run_id": run_id}
    first.stop()
    assert first.wait(WAIT) is RunState.STOPPED
    second = other.start(config())
    assert other.wait(WAIT) is RunState.DONE and second != run_id


def test_chat_is_refused_while_a_worker_trains(tmp_path, monkeypatch):
    runner = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    run_id = runner.start(config())
    chat = ChatModel(lock_of(tmp_path))
    with pytest.raises(EngineError) as caught:
        chat.compare(tmp_path / run_id, [{"role": "user", "content": "hi"}])
    assert caught.value.code == "busy_generating" and chat.loads == 0
    studio = Studio(tmp_path, data_root=tmp_path / "data")
    with pytest.raises(EngineError) as caught:
        studio.compare(tmp_path / run_id, "hi")
    assert caught.value.code == "busy_generating"
    runner.stop()
    assert runner.wait(WAIT) is RunState.STOPPED
    assert studio.chat.lock.acquire("chat")  # free again once the worker ended
    studio.chat.lock.release()


def test_the_device_is_free_as_soon_as_the_run_has_ended_while_the_worker_still_exits(tmp_path, monkeypatch):
    runner = worker_runner(tmp_path, monkeypatch, "steps=2 delay=0.01 linger=8")
    run_id = runner.start(config())
    wait_until(lambda: runner.snapshot(run_id).state is RunState.DONE, what="DONE")
    wait_until(lambda: not lock_of(tmp_path).locked(), timeout=5, what="the lock freed")  # not after the teardown
    assert live_worker(tmp_path / run_id) is not None  # the worker is still ending (8 s), yet the device is free
    lock = lock_of(tmp_path)
    assert lock.acquire("chat")
    lock.release()


def test_a_reused_pid_is_not_taken_for_the_worker(tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(config().to_yaml(), encoding="utf-8")
    EventLog(run_dir / "events.jsonl").append(StatusEvent(RunState.TRAINING, max_steps=5))
    # a live pid (this test's process), but not the process that started then: its start time differs
    (run_dir / WORKER_FILE).write_text(json.dumps({"pid": os.getpid(), "started": process_started(os.getpid()) - 60}))
    assert live_worker(run_dir) is None
    runner = Runner(tmp_path, job_factory=FakeJob)
    assert runner.snapshot("old").state is RunState.INTERRUPTED and not runner.is_live()
    (run_dir / WORKER_FILE).write_text(json.dumps({"pid": os.getpid(), "started": process_started(os.getpid())}))
    assert live_worker(run_dir) == os.getpid()


def test_a_full_disk_while_saving_fails_with_the_reason(tmp_path):
    class FullDiskJob(FakeJob):
        def save(self, adapter_dir: Path) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(adapter_dir))

    runner = Runner(tmp_path, job_factory=lambda *a: FullDiskJob(*a, steps=2, delay=0.0))
    run_id = runner.start(config())
    assert runner.wait(WAIT) is RunState.FAILED
    error = runner.snapshot(run_id).error
    assert error.code == "disk_full" and error.hint == "hint_free_disk"
    assert error.params == {"path": str(tmp_path / run_id / "adapter")}
    assert [e.state.value for e in runner.events_since(run_id, 0)[0] if e.kind == "status"][-2:] == ["SAVING",
                                                                                                     "FAILED"]


def test_run_folders_are_claimed_atomically(tmp_path):
    path = tmp_path / "20240101-120000"
    assert [_new_run_dir(path, False).name for _ in range(3)] == [path.name, f"{path.name}-2", f"{path.name}-3"]
    (tmp_path / "mine").mkdir()
    assert _new_run_dir(tmp_path / "mine", True) == tmp_path / "mine"  # an empty folder the user named
    assert _new_run_dir(tmp_path / "mine", False) == tmp_path / "mine-2"


def test_status_lists_runs_with_their_live_worker(tmp_path, monkeypatch, capsys):
    done = tmp_path / "a-done"
    log = EventLog(done / "events.jsonl")
    for event in (StatusEvent(RunState.LOADING), LogEvent(2, loss=0.75), StatusEvent(RunState.DONE)):
        log.append(event)
    (done / "config.yaml").write_text(config().to_yaml(), encoding="utf-8")
    runner = worker_runner(tmp_path, monkeypatch, "steps=1000 delay=0.05")
    live = runner.start(config(), run_dir=tmp_path / "b-live")
    wait_until(lambda: runner.snapshot(live).step >= 1 and runner.worker_pid(live) is not None, what="step 1")

    assert cli.main(["status", "--runs-dir", str(tmp_path), "--json"]) == 0
    listed = {run["run_id"]: run for run in json.loads(capsys.readouterr().out)}
    assert listed["a-done"] == {"run_id": "a-done", "state": "DONE", "step": 2, "last_loss": 0.75,
                                "worker_pid": None}
    assert listed[live]["state"] == "TRAINING" and listed[live]["worker_pid"] == runner.worker_pid(live)
    assert cli.main(["status", "--runs-dir", str(tmp_path), "--lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "a-done\tDone\tstep 2\tloss 0.7500\tpid -" in lines
    assert any(line.startswith(f"{live}\tTraining\t") and line.endswith(f"pid {listed[live]['worker_pid']}")
               for line in lines)
    runner.stop()
    assert runner.wait(WAIT) is RunState.STOPPED
    assert cli.main(["status", "--runs-dir", str(tmp_path / "none"), "--lang", "zh"]) == 0
    assert "还没有训练记录" in capsys.readouterr().out


@pytest.mark.slow
def test_real_worker_killed_mid_run_fails_at_once_and_resumes_to_done(tmp_path, english_dataset):
    """kill -9 of a real training worker: FAILED within 5 s, the app answers, Resume continues from the last
    checkpoint to DONE."""
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    cfg = studio.default_config().replace(dataset_path=str(english_dataset), max_steps=6, save_steps=2,
                                          per_device_train_batch_size=2, max_length=96, eval_split=0.0,
                                          eval_strategy="no", logging_steps=1)
    run_id = studio.start(cfg)
    run_dir = tmp_path / "runs" / run_id
    wait_until(lambda: latest_checkpoint(run_dir) is not None, timeout=600, what="a checkpoint")
    os.kill(studio.worker_pid(run_id), signal.SIGKILL)
    killed = time.monotonic()
    assert studio.runner.wait(60) is RunState.FAILED and time.monotonic() - killed < 5
    assert studio.snapshot(run_id).error.code == "killed_out_of_memory"
    assert [s.run_id for s in studio.list_runs()] == [run_id]  # the app answers
    assert_resumes_to_done(studio, run_id, run_dir)


def test_a_stop_before_the_step_time_is_known_waits_longer_than_one_after():
    from dataclasses import replace

    from engine.training.launch import FIRST_STEPS_GRACE, STOP_GRACE_S, stop_grace

    def logged(step: int, at: float) -> LogEvent:
        return replace(LogEvent(step, loss=1.0), time=at)

    assert stop_grace([]) == stop_grace([logged(1, 100.0)]) == FIRST_STEPS_GRACE * STOP_GRACE_S  # warming up
    assert stop_grace([logged(1, 100.0), logged(2, 104.0)]) == STOP_GRACE_S  # 4 s steps: the floor
    assert stop_grace([logged(1, 100.0), logged(3, 200.0)]) == 150.0  # three 50 s steps
