"""EventCallback with fake trainer state/control objects: log events, throughput and stopping."""
from __future__ import annotations

import json
import math
import threading
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

from engine.training import callbacks  # noqa: E402
from engine.training.callbacks import EventCallback  # noqa: E402
from engine.training.events import EventLog, RunState, StatusEvent  # noqa: E402


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(callbacks.time, "monotonic", fake)
    monkeypatch.setattr(callbacks, "memory_in_use_mb", lambda: 123.456)
    monkeypatch.setattr(callbacks, "peak_memory_mb", lambda: 456.789)
    return fake


@pytest.fixture
def setup(clock):
    log, stop = EventLog(), threading.Event()
    callback = EventCallback(log, stop)
    state = SimpleNamespace(global_step=0, epoch=0.0, max_steps=10, num_input_tokens_seen=0)
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    return callback, log, stop, state, control, clock


def events(log, kind=None):
    return [e for e in log.since(0)[0] if kind is None or e.kind == kind]


def test_train_begin_emits_training_status(setup):
    callback, log, _stop, state, control, _clock = setup
    callback.on_train_begin(None, state, control)
    assert events(log) == [StatusEvent(RunState.TRAINING, max_steps=10)]
    assert [(e.kind, e.payload()) for e in events(log)] == [("status", {"state": RunState.TRAINING.value,
                                                                        "max_steps": 10})]
    assert control.should_training_stop is False


def test_on_log_emits_metrics(setup):
    callback, log, _stop, state, control, _clock = setup
    callback.on_train_begin(None, state, control)
    state.global_step, state.epoch = 1, 0.123456
    callback.on_log(None, state, control, logs={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 0.75,
                                                "mean_token_accuracy": 0.4, "epoch": 0.12})
    [event] = events(log, "log")
    assert event.step == 1
    assert event.epoch == 0.1235
    assert event.max_steps == 10
    assert event.loss == 2.5
    assert event.learning_rate == 1e-4
    assert event.grad_norm == 0.75
    assert event.mean_token_accuracy == 0.4
    assert event.memory_mb == 123.5 and event.peak_memory_mb == 456.8
    assert event.eval_loss is None and "eval_loss" not in event.payload()


def test_tokens_per_second_after_two_logs(setup):
    callback, log, _stop, state, control, clock = setup
    callback.on_train_begin(None, state, control)
    clock.now += 2.0
    state.global_step, state.num_input_tokens_seen = 1, 400
    callback.on_log(None, state, control, logs={"loss": 2.0})
    clock.now += 4.0
    state.global_step, state.num_input_tokens_seen = 2, 1200
    callback.on_log(None, state, control, logs={"loss": 1.9})
    first, second = events(log, "log")
    assert first.tokens_per_second == pytest.approx(200.0)
    assert second.tokens_per_second == pytest.approx(200.0)
    assert (first.tokens_seen, second.tokens_seen) == (400, 1200)


def test_no_tokens_per_second_without_new_tokens(setup):
    callback, log, _stop, state, control, clock = setup
    callback.on_train_begin(None, state, control)
    clock.now += 1.0
    callback.on_log(None, state, control, logs={"loss": 2.0})  # num_input_tokens_seen stays 0
    [event] = events(log, "log")
    assert event.tokens_per_second is None and "tokens_per_second" not in event.payload()


def test_eval_logs_carry_eval_loss_and_do_not_count_as_throughput(setup):
    callback, log, _stop, state, control, clock = setup
    callback.on_train_begin(None, state, control)
    clock.now += 1.0
    state.global_step, state.num_input_tokens_seen = 1, 100
    callback.on_log(None, state, control, logs={"loss": 2.0})
    clock.now += 50.0  # a long evaluation
    callback.on_log(None, state, control, logs={"eval_loss": 1.8, "eval_runtime": 50.0})
    clock.now += 1.0
    state.global_step, state.num_input_tokens_seen = 2, 200
    callback.on_log(None, state, control, logs={"loss": 1.7})
    train1, evaluation, train2 = events(log, "log")
    assert evaluation.eval_loss == 1.8
    assert evaluation.loss is None and evaluation.tokens_per_second is None
    assert "loss" not in evaluation.payload() and "tokens_per_second" not in evaluation.payload()
    assert train2.tokens_per_second == pytest.approx(100.0)


def test_end_summary_emits_nothing(setup):
    callback, log, _stop, state, control, _clock = setup
    callback.on_log(None, state, control, logs={"train_runtime": 10.0, "train_samples_per_second": 3.0,
                                                "train_steps_per_second": 0.2, "train_loss": 1.6,
                                                "epoch": 1.0})
    callback.on_log(None, state, control, logs=None)
    assert events(log) == []


def test_non_finite_values_become_none(setup):
    """Reported but not finite: NaN on the event, None (null) in its payload and its line."""
    callback, log, _stop, state, control, _clock = setup
    callback.on_log(None, state, control, logs={"loss": float("nan"), "grad_norm": float("inf")})
    [event] = events(log, "log")
    assert math.isnan(event.loss) and math.isnan(event.grad_norm)
    assert event.payload()["loss"] is None and event.payload()["grad_norm"] is None
    line = json.loads(event.to_json(), parse_constant=lambda name: pytest.fail(f"{name} in the line"))  # plain JSON
    assert line["data"]["loss"] is None and line["data"]["grad_norm"] is None


def test_step_end_without_stop(setup):
    callback, _log, _stop, state, control, _clock = setup
    callback.on_step_end(None, state, control)
    assert control.should_training_stop is False and control.should_save is False


def test_stop_request_stops_and_saves(setup):
    callback, _log, stop, state, control, _clock = setup
    stop.set()
    callback.on_step_end(None, state, control)
    assert control.should_training_stop is True and control.should_save is True


def test_stop_before_training_begins(setup):
    callback, log, stop, state, control, _clock = setup
    stop.set()
    callback.on_train_begin(None, state, control)
    assert control.should_training_stop is True
    assert events(log, "status")[0].state is RunState.TRAINING


def test_the_peak_memory_is_this_process_peak_resident_memory_on_a_cpu():
    import resource

    import torch

    from engine.system.device import peak_memory_mb

    if torch.cuda.is_available():
        pytest.skip("on a CUDA machine the peak is torch's reserved memory")

    assert peak_memory_mb() == resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > 0
