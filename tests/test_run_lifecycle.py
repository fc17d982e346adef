"""Resume, interrupted-run recovery and deletion, with a fake job (fast) and the real trainer (slow)."""
from __future__ import annotations

import os
import time

import pytest

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.presets import SAMPLE_DATASET
from engine.training.adapters import latest_checkpoint
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent
from engine.training.runner import OWNER_FILE, Runner
from tests.conftest import FakeJob


def config() -> TrainConfig:
    return TrainConfig(dataset_path=str(SAMPLE_DATASET))


def wait_for_step(runner: Runner, run_id: str, step: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while runner.snapshot(run_id).step < step:
        assert time.time() < deadline, "the run did not reach the step in time"
        time.sleep(0.02)


def test_stop_then_resume_continues_from_the_checkpoint(tmp_path):
    runner = Runner(tmp_path, job_factory=lambda *a: FakeJob(*a, steps=30, delay=0.05))
    run_id = runner.start(config())
    wait_for_step(runner, run_id, 5)
    runner.stop()
    assert runner.wait(10) is RunState.STOPPED
    stopped_at = runner.snapshot(run_id).step
    assert latest_checkpoint(tmp_path / run_id).name == f"checkpoint-{stopped_at}"

    assert runner.resume(run_id) == run_id
    assert runner.wait(20) is RunState.DONE
    events = runner.events_since(run_id, 0)[0]
    assert [e.seq for e in events] == list(range(len(events)))  # one log, numbering continues
    steps = [e.step for e in events if e.kind == "log"]
    assert steps == list(range(1, 31))  # no step repeated or skipped across the resume
    assert any(e.kind == "status" and e.resumed_from == f"checkpoint-{stopped_at}" for e in events)
    # a new reader of the file sees the same thing
    assert [e.seq for e in EventLog.read(tmp_path / run_id / "events.jsonl").since(0)[0]] == [e.seq for e in events]


def test_resume_refuses_without_checkpoint_and_while_live(tmp_path):
    runner = Runner(tmp_path, job_factory=lambda *a: FakeJob(*a, steps=200, delay=0.05))
    run_id = runner.start(config())
    with pytest.raises(EngineError) as caught:
        runner.resume(run_id)
    assert caught.value.code == "run_is_live"
    with pytest.raises(EngineError) as caught:
        runner.delete(run_id)
    assert caught.value.code == "run_is_live"
    runner.stop()
    runner.wait(10)
    runner.delete(run_id)
    assert not (tmp_path / run_id).exists() and runner.list_runs() == []

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text(config().to_yaml(), encoding="utf-8")
    with pytest.raises(EngineError) as caught:
        runner.resume("empty")
    assert caught.value.code == "no_checkpoint"


def test_a_run_left_live_by_a_dead_process_is_marked_interrupted_and_resumable(tmp_path):
    run_dir = tmp_path / "crashed"
    (run_dir / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text("{}", encoding="utf-8")
    (run_dir / "config.yaml").write_text(config().to_yaml(), encoding="utf-8")
    log = EventLog(run_dir / "events.jsonl")
    log.append(StatusEvent(RunState.LOADING))
    log.append(StatusEvent(RunState.TRAINING, max_steps=8))
    for step in (1, 2, 3):
        log.append(LogEvent(step, max_steps=8, loss=1.0 / step))
    (run_dir / OWNER_FILE).write_text("999999999", encoding="utf-8")  # no such process

    runner = Runner(tmp_path, job_factory=lambda *a: FakeJob(*a, steps=8, delay=0.01))
    summary = {run.run_id: run for run in runner.list_runs()}["crashed"]
    assert summary.state is RunState.INTERRUPTED and summary.can_resume
    runner.resume("crashed")
    assert runner.wait(10) is RunState.DONE
    steps = [e.step for e in runner.events_since("crashed", 0)[0] if e.kind == "log"]
    assert steps == list(range(1, 9))


def test_a_run_owned_by_a_live_process_is_left_alone(tmp_path):
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(config().to_yaml(), encoding="utf-8")
    EventLog(run_dir / "events.jsonl").append(StatusEvent(RunState.TRAINING, max_steps=5))
    (run_dir / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
    assert Runner(tmp_path, job_factory=FakeJob).snapshot("elsewhere").state is RunState.TRAINING


@pytest.mark.slow
def test_real_resume_restores_the_trainer_state(tmp_path, english_dataset):
    """Stop a real run after a checkpoint, resume it: training goes on from the saved global step."""
    from engine.studio import Studio

    studio = Studio(tmp_path / "runs")
    cfg = studio.default_config().replace(dataset_path=str(english_dataset), max_steps=6, save_steps=2,
                                          per_device_train_batch_size=2, max_length=96, eval_split=0.0,
                                          eval_strategy="no", logging_steps=1)
    run_id = studio.start(cfg)
    run_dir = tmp_path / "runs" / run_id
    deadline = time.time() + 600
    while latest_checkpoint(run_dir) is None:
        assert time.time() < deadline and studio.runner.is_live()
        time.sleep(0.5)
    studio.stop()
    assert studio.runner.wait(600) is RunState.STOPPED
    assert_resumes_to_done(studio, run_id, run_dir)


@pytest.mark.slow
def test_real_out_of_memory_fails_cleanly_then_stop_saves_a_loadable_adapter(tmp_path, english_dataset):
    """A simulated OOM mid-run ends FAILED with the cause and frees the lock; the next run trains and,
    stopped, leaves an adapter that PEFT loads."""
    import torch
    from transformers import TrainerCallback

    from engine.studio import Studio
    from engine.training.job import SFTJob

    class OutOfMemoryAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def failing_job(*args):
        job = SFTJob(*args)
        job.trainer.add_callback(OutOfMemoryAtStep2())
        return job

    cfg = TrainConfig(dataset_path=str(english_dataset), max_steps=40, per_device_train_batch_size=2,
                      max_length=96, eval_split=0.0, eval_strategy="no", save_steps=1000)
    studio = Studio(tmp_path / "runs", job_factory=failing_job)
    failed = studio.start(cfg)
    assert studio.runner.wait(600) is RunState.FAILED
    error = studio.snapshot(failed).error
    assert error.code == "out_of_memory" and error.hint == "hint_reduce_memory"
    assert "out of memory" in (tmp_path / "runs" / failed / "train.log").read_text()

    studio = Studio(tmp_path / "runs")  # the lock was released: a new run starts
    run_id = studio.start(cfg)
    wait_for_step(studio.runner, run_id, 2, timeout=600)
    studio.stop()
    assert studio.runner.wait(600) is RunState.STOPPED
    adapter = tmp_path / "runs" / run_id / "adapter"
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import loader

    base = AutoModelForCausalLM.from_pretrained(loader.resolve_model(cfg.model_name_or_path))
    assert PeftModel.from_pretrained(base, str(adapter)).peft_config["default"].r == cfg.lora_r


def assert_resumes_to_done(studio, run_id: str, run_dir, last_step: int = 6) -> None:
    """Resume the run from its latest checkpoint: it goes on from the next step to `last_step`, DONE, with
    its adapter saved."""
    checkpoint_step = int(latest_checkpoint(run_dir).name.split("-")[-1])
    studio.resume(run_id)
    assert studio.runner.wait(900) is RunState.DONE
    events = studio.events_since(run_id, 0)[0]
    resumed_at = max(i for i, e in enumerate(events) if e.kind == "status" and e.resumed_from)
    after = [e.step for e in events[resumed_at:] if e.kind == "log" and e.loss is not None]
    assert after and after[0] == checkpoint_step + 1 and after[-1] == last_step
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
