"""Runner lifecycle driven by a fake job (no model): states, stop, failures, the lock, persistence."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.system.device import DeviceLock
from engine.training.events import ErrorEvent, EventLog, LogEvent, RunState, StatusEvent
from engine.training.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "engine" / "data" / "samples" / "customer_service.jsonl")
WAIT = 30  # seconds; a guard against hangs, not a timing assertion


class FakeJob:
    """Emits TRAINING and a few logs like the real callback; optionally blocks until stopped or fails."""

    def __init__(self, factory: "FakeFactory", config, examples, run_dir, log: EventLog, stop: threading.Event):
        self.factory, self.config, self.examples = factory, config, examples
        self.run_dir, self.log, self.stop = run_dir, log, stop

    def train(self) -> None:
        self.factory.trained += 1
        self.log.append(StatusEvent(RunState.TRAINING, max_steps=3))
        for step in (1, 2):
            self.log.append(LogEvent(step, epoch=step / 3, max_steps=3, loss=2.0 / step))
        if self.factory.block:
            self.factory.training.set()
            assert self.stop.wait(WAIT), "the test never stopped the run"
            return
        if self.factory.error is not None:
            raise self.factory.error
        self.log.append(LogEvent(3, epoch=1.0, max_steps=3, loss=0.5))

    def save(self, adapter_dir: Path) -> None:
        self.factory.saved.append(adapter_dir)
        adapter_dir.mkdir(parents=True, exist_ok=True)
        (adapter_dir / "adapter_config.json").write_text("{}", encoding="utf-8")
        (adapter_dir / "adapter_model.safetensors").write_bytes(b"fake")


class FakeFactory:
    def __init__(self, *, block: bool = False, error: BaseException | None = None,
                 factory_error: BaseException | None = None) -> None:
        self.block, self.error, self.factory_error = block, error, factory_error
        self.calls: list[tuple] = []
        self.saved: list[Path] = []
        self.trained = 0
        self.training = threading.Event()

    def __call__(self, config, examples, run_dir, log, stop):
        self.calls.append((config, examples, run_dir))
        if self.factory_error is not None:
            raise self.factory_error
        return FakeJob(self, config, examples, run_dir, log, stop)


@pytest.fixture
def lock(tmp_path):
    return DeviceLock(tmp_path / ".device.lock")


@pytest.fixture
def config():
    return TrainConfig(dataset_path=SAMPLE, max_steps=3)


def states(runner, run_id):
    return [e.state.value for e in runner.events_since(run_id, 0)[0] if e.kind == "status"]


def finish(runner) -> RunState:
    state = runner.wait(WAIT)
    assert not runner.is_live(), "the run thread did not end"
    return state


# ---- the happy path -------------------------------------------------------------------------
def test_run_to_done(tmp_path, lock, config):
    factory = FakeFactory()
    runner = Runner(tmp_path / "runs", factory, lock)
    run_id = runner.start(config, run_dir=tmp_path / "runs" / "first")
    assert run_id == "first" and runner.current_run_id == "first"
    assert finish(runner) is RunState.DONE
    assert states(runner, run_id) == ["LOADING", "TRAINING", "SAVING", "DONE"]
    run_dir = tmp_path / "runs" / "first"
    assert factory.saved == [run_dir / "adapter"]
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert not lock.locked()
    # the factory got the config and the checked examples
    got_config, examples, got_dir = factory.calls[0]
    assert got_config == config and len(examples) == 120 and got_dir == run_dir
    assert "prompt" in examples[0] and "completion" in examples[0]
    # LOADING reports the usable rows; snapshot folds the last metrics
    first = runner.events_since(run_id, 0)[0][0]
    assert first == StatusEvent(RunState.LOADING, rows=120)
    snap = runner.snapshot()
    assert snap.state is RunState.DONE and snap.step == 3 and snap.last_loss == 0.5 and snap.max_steps == 3
    assert runner.stop() is False  # nothing live to stop


def test_config_yaml_written_and_loads_back(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    changed = config.replace(lora_r=4, lora_target_modules="q_proj,v_proj", learning_rate=1e-5)
    run_id = runner.start(changed)
    finish(runner)
    run_dir = runner.run_dir(run_id)
    assert run_dir.parent == tmp_path / "runs"
    assert TrainConfig.from_yaml(run_dir / "config.yaml") == changed
    assert not list(run_dir.glob(".config.yaml.*"))  # no temp file left behind


def test_events_jsonl_mirrors_the_run(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    run_id = runner.start(config)
    finish(runner)
    lines = (runner.run_dir(run_id) / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(len(runner.events_since(run_id, 0)[0])))


def test_runs_without_run_dir_get_distinct_folders(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    first = runner.start(config)
    finish(runner)
    second = runner.start(config)
    finish(runner)
    assert first != second
    assert runner.run_dir(first) != runner.run_dir(second)
    assert (runner.run_dir(first) / "adapter").is_dir() and (runner.run_dir(second) / "adapter").is_dir()


def test_existing_non_empty_run_dir_is_not_reused(tmp_path, lock, config):
    target = tmp_path / "runs" / "mine"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("x", encoding="utf-8")
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    run_id = runner.start(config, run_dir=target)
    finish(runner)
    assert run_id == "mine-2"
    assert (target / "keep.txt").read_text(encoding="utf-8") == "x" and not (target / "config.yaml").exists()


# ---- stop -----------------------------------------------------------------------------------
def test_stop_mid_training(tmp_path, lock, config):
    factory = FakeFactory(block=True)
    runner = Runner(tmp_path / "runs", factory, lock)
    run_id = runner.start(config)
    assert factory.training.wait(WAIT)
    assert runner.is_live() and runner.snapshot().state is RunState.TRAINING
    assert runner.stop() is True
    assert finish(runner) is RunState.STOPPED
    assert states(runner, run_id) == ["LOADING", "TRAINING", "SAVING", "STOPPED"]
    assert factory.saved == [runner.run_dir(run_id) / "adapter"]
    assert not lock.locked()


def test_stop_while_loading_skips_training(tmp_path, lock, config):
    loading, release = threading.Event(), threading.Event()
    inner = FakeFactory()

    def slow_factory(*args):
        loading.set()
        assert release.wait(WAIT)
        return inner(*args)

    runner = Runner(tmp_path / "runs", slow_factory, lock)
    run_id = runner.start(config)
    assert loading.wait(WAIT)
    assert runner.stop() is True
    release.set()
    assert finish(runner) is RunState.STOPPED
    assert inner.trained == 0 and inner.saved == []
    assert states(runner, run_id) == ["LOADING", "STOPPED"]
    assert not lock.locked()


def test_a_new_run_after_a_stop_is_not_stopped(tmp_path, lock, config):
    factory = FakeFactory(block=True)
    runner = Runner(tmp_path / "runs", factory, lock)
    runner.start(config)
    assert factory.training.wait(WAIT)
    runner.stop()
    finish(runner)
    factory.block = False
    second = runner.start(config)
    assert finish(runner) is RunState.DONE
    assert states(runner, second)[-1] == "DONE"


# ---- failures -------------------------------------------------------------------------------
def test_job_failure(tmp_path, lock, config):
    factory = FakeFactory(error=RuntimeError("boom in step 2\nsecond line"))
    runner = Runner(tmp_path / "runs", factory, lock)
    run_id = runner.start(config)
    assert finish(runner) is RunState.FAILED
    assert states(runner, run_id) == ["LOADING", "TRAINING", "FAILED"]
    errors = [e for e in runner.events_since(run_id, 0)[0] if e.kind == "error"]
    assert len(errors) == 1
    assert errors[0] == ErrorEvent("train_failed", {"detail": "boom in step 2"}, "hint_debug")
    assert runner.snapshot().error.code == "train_failed"
    trace = (runner.run_dir(run_id) / "train.log").read_text(encoding="utf-8")
    assert "Traceback" in trace and "RuntimeError: boom in step 2" in trace
    assert factory.saved == []
    # the lock is free: a second start works
    assert not lock.locked()
    factory.error = None
    second = runner.start(config)
    assert finish(runner) is RunState.DONE and second != run_id


def test_out_of_memory(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(error=MemoryError()), lock)
    run_id = runner.start(config)
    assert finish(runner) is RunState.FAILED
    error = runner.snapshot(run_id).error
    assert error.code == "out_of_memory" and error.hint == "hint_reduce_memory"
    assert not lock.locked()


def test_out_of_memory_by_message(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(error=RuntimeError("CUDA out of memory. Tried to allocate")),
                    lock)
    run_id = runner.start(config)
    finish(runner)
    assert runner.snapshot(run_id).error.code == "out_of_memory"


def test_engine_error_from_loading_keeps_its_code(tmp_path, lock, config):
    error = EngineError("model_offline", {"name": "org/model", "extra": Path("/x")}, hint="hint_local_model")
    runner = Runner(tmp_path / "runs", FakeFactory(factory_error=error), lock)
    run_id = runner.start(config)
    assert finish(runner) is RunState.FAILED
    assert states(runner, run_id) == ["LOADING", "FAILED"]
    assert runner.snapshot(run_id).error == ErrorEvent("model_offline", {"name": "org/model", "extra": "/x"},
                                                       "hint_local_model")
    # params are stored as plain JSON
    stored = EventLog.read(runner.run_dir(run_id) / "events.jsonl")
    assert stored.skipped == 0
    assert [e for e in stored.since(0)[0] if e.kind == "error"] == [runner.snapshot(run_id).error]
    assert not lock.locked()


def test_empty_exception_message(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(error=ValueError()), lock)
    run_id = runner.start(config)
    finish(runner)
    assert runner.snapshot(run_id).error.params == {"detail": "ValueError"}


# ---- refusals -------------------------------------------------------------------------------
def test_second_start_while_live_is_busy(tmp_path, lock, config):
    factory = FakeFactory(block=True)
    runner = Runner(tmp_path / "runs", factory, lock)
    first = runner.start(config)
    assert factory.training.wait(WAIT)
    with pytest.raises(EngineError) as info:
        runner.start(config)
    assert info.value.code == "busy" and info.value.params == {"run_id": first}
    assert info.value.hint == "hint_wait_or_stop"
    assert len(factory.calls) == 1 and runner.current_run_id == first
    runner.stop()
    assert finish(runner) is RunState.STOPPED


def test_busy_when_another_user_holds_the_device(tmp_path, lock, config):
    lock.acquire()
    try:
        runner = Runner(tmp_path / "runs", FakeFactory(), lock)
        with pytest.raises(EngineError) as info:
            runner.start(config)
        assert info.value.code == "busy"
        assert not (tmp_path / "runs").exists()
    finally:
        lock.release()


@pytest.mark.parametrize("changes,code", [
    ({"lora_r": 0}, "config_range"),
    ({"bf16": True, "fp16": True}, "config_both_precisions"),
    ({"dataset_path": ""}, "config_no_dataset"),
    ({"dataset_path": "/no/such/file.jsonl"}, "dataset_not_found"),
])
def test_invalid_config_fails_synchronously(tmp_path, lock, config, changes, code):
    factory = FakeFactory()
    runner = Runner(tmp_path / "runs", factory, lock)
    with pytest.raises(EngineError) as info:
        runner.start(config.replace(**changes))
    assert info.value.code == code and info.value.hint == "hint_fix_config"
    assert "field" in info.value.params
    assert runner._watch is None and not runner.is_live()
    assert not lock.locked() and factory.calls == []
    assert not (tmp_path / "runs").exists()


def test_unusable_dataset_fails_synchronously(tmp_path, lock, config):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "q"}\n{"instruction": "r", "output": ""}\n', encoding="utf-8")
    factory = FakeFactory()
    runner = Runner(tmp_path / "runs", factory, lock)
    with pytest.raises(EngineError) as info:
        runner.start(config.replace(dataset_path=str(bad)))
    assert info.value.code == "dataset_missing_field"
    assert info.value.params["row"] == 1 and info.value.params["field"] == "output"
    assert info.value.hint == "hint_fix_rows"
    assert runner._watch is None and not lock.locked() and factory.calls == []


def test_dataset_with_unknown_format_fails_synchronously(tmp_path, lock, config):
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"q": "a"}\n', encoding="utf-8")
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    with pytest.raises(EngineError) as info:
        runner.start(config.replace(dataset_path=str(bad)))
    assert info.value.code == "dataset_unknown_format"
    assert not lock.locked()


def test_partly_bad_dataset_trains_on_the_good_rows(tmp_path, lock, config):
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "r"}\n', encoding="utf-8")
    factory = FakeFactory()
    runner = Runner(tmp_path / "runs", factory, lock)
    runner.start(config.replace(dataset_path=str(mixed)))
    assert finish(runner) is RunState.DONE
    assert len(factory.calls[0][1]) == 1


# ---- persistence ----------------------------------------------------------------------------
def test_list_runs_and_events_from_disk(tmp_path, lock, config):
    root = tmp_path / "runs"
    runner = Runner(root, FakeFactory(), lock)
    done = runner.start(config, run_dir=root / "a-done")
    finish(runner)
    runner.job_factory = FakeFactory(error=RuntimeError("bad"))
    failed = runner.start(config, run_dir=root / "b-failed")
    finish(runner)
    live_view = {s.run_id: s for s in runner.list_runs()}

    fresh = Runner(root, FakeFactory(), DeviceLock(tmp_path / "other.lock"))
    summaries = {s.run_id: s for s in fresh.list_runs()}
    assert set(summaries) == {done, failed}
    assert summaries[done].state is RunState.DONE and summaries[done].has_adapter is True
    assert summaries[done].last_loss == 0.5 and summaries[done].run_dir == str(root / done)
    assert summaries[failed].state is RunState.FAILED and summaries[failed].has_adapter is False
    assert {k: (v.state, v.has_adapter, v.last_loss) for k, v in summaries.items()} == \
        {k: (v.state, v.has_adapter, v.last_loss) for k, v in live_view.items()}
    # newest first
    started = [s.started for s in fresh.list_runs()]
    assert started == sorted(started, reverse=True)

    events, cursor = fresh.events_since(done, 0)
    assert [e.state.value for e in events if e.kind == "status"] == ["LOADING", "TRAINING", "SAVING", "DONE"]
    assert cursor == len(events)
    later, cursor2 = fresh.events_since(done, 2)
    assert [e.seq for e in later] == list(range(2, cursor)) and cursor2 == cursor
    assert fresh.snapshot(failed).error.code == "train_failed"
    assert fresh.run_dir(done) == root / done


def test_unknown_run(tmp_path, lock):
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    assert runner.list_runs() == []
    assert runner.events_since("nope", 5) == ([], 5)
    assert runner.events_since(None, 0) == ([], 0)
    assert runner.snapshot("nope").state is RunState.IDLE
    assert runner.run_dir("nope") is None


def test_folders_without_config_are_not_runs(tmp_path, lock):
    root = tmp_path / "runs"
    (root / "junk").mkdir(parents=True)
    (root / "file.txt").write_text("x", encoding="utf-8")
    assert Runner(root, FakeFactory(), lock).list_runs() == []


def test_run_outside_runs_root_is_listed(tmp_path, lock, config):
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    run_id = runner.start(config, run_dir=tmp_path / "elsewhere" / "x")
    finish(runner)
    assert [s.run_id for s in runner.list_runs()] == [run_id]
    assert runner.run_dir(run_id) == tmp_path / "elsewhere" / "x"


@pytest.mark.parametrize("run_id", ["../outside", "..", "/tmp/outside", "sub/outside", ""])
def test_a_run_id_never_reaches_outside_runs_root(tmp_path, lock, run_id):
    """Delete and resume come from web requests: a run id that is a path must not name a folder elsewhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.yaml").write_text("max_steps: 1\n", encoding="utf-8")
    runner = Runner(tmp_path / "runs", FakeFactory(), lock)
    assert runner.run_dir(run_id if not run_id.startswith("/") else str(outside)) is None
    with pytest.raises(EngineError) as caught:
        runner.delete(run_id if not run_id.startswith("/") else str(outside))
    assert caught.value.code == "run_not_found"
    assert (outside / "config.yaml").is_file()


def test_a_checkpoint_folder_without_a_step_is_not_the_latest(tmp_path):
    from engine.training.adapters import latest_checkpoint

    for name in ("checkpoint-3", "checkpoint-old"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "checkpoints" / name / "trainer_state.json").write_text("{}", encoding="utf-8")
    assert latest_checkpoint(tmp_path).name == "checkpoint-3"
