"""A TrainerCallback that turns trainer logs into events and a stop request into a clean stop."""
from __future__ import annotations

import math
import threading
import time

from transformers import TrainerCallback

from engine.system.device import memory_in_use_mb, peak_memory_mb
from engine.training.events import DPO_METRICS, METRICS, EventLog, LogEvent, RunState, StatusEvent
from engine.training.worker import StopFile


class EventCallback(TrainerCallback):
    """Emits TRAINING status, one `log` event per trainer log, and honours `stop_requested` (checked at every
    step end: the run's stop file, or anything with the `is_set()` of a `threading.Event`)."""

    def __init__(self, log: EventLog, stop_requested: StopFile | threading.Event) -> None:
        self.log = log
        self.stop_requested = stop_requested
        self._last_tokens = 0
        self._last_time = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        """Record the TRAINING status with the step count, start the throughput clock, and honour an early stop."""
        self._last_time = time.monotonic()
        self._last_tokens = state.num_input_tokens_seen or 0
        self.log.append(StatusEvent(RunState.TRAINING, max_steps=state.max_steps))
        self._check_stop(args, control)

    def on_step_end(self, args, state, control, **kwargs):
        """Make the trainer stop (and save) once a stop is requested."""
        self._check_stop(args, control)

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Append one trainer log as a LogEvent with tokens/s and memory in use (MiB), DPO's rewards under their
        field names; the final summary is skipped."""
        logs = {DPO_METRICS.get(key, key): value for key, value in (logs or {}).items()}
        if not any(key in logs for key in METRICS):
            return  # the end-of-training summary repeats what was already reported
        data = {"epoch": round(state.epoch or 0.0, 4), "max_steps": state.max_steps}
        for key in METRICS:
            value = logs.get(key)
            if isinstance(value, (int, float)):
                data[key] = float(value) if math.isfinite(value) else math.nan  # NaN: reported, not finite
        if "loss" in logs:
            now, tokens = time.monotonic(), state.num_input_tokens_seen or 0
            if now > self._last_time and tokens > self._last_tokens:
                data["tokens_per_second"] = (tokens - self._last_tokens) / (now - self._last_time)
            self._last_time, self._last_tokens = now, tokens
            data["tokens_seen"] = tokens
        elif "eval_loss" in logs:
            self._last_time = time.monotonic()  # evaluation time is not training throughput
        data["memory_mb"] = round(memory_in_use_mb(), 1)
        data["peak_memory_mb"] = round(peak_memory_mb(), 1)
        self.log.append(LogEvent(state.global_step, **data))

    def _check_stop(self, args, control) -> None:
        if stop_agreed(self.stop_requested.is_set(), args):
            control.should_training_stop = True
            control.should_save = True


def stop_agreed(requested: bool, args) -> bool:
    """Whether this process or any other process of a multi-GPU run saw the stop request: every rank then stops
    after the same step (a rank that went on alone would wait for the others' gradients forever). One process
    alone decides by itself."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return requested
    flag = torch.tensor([int(requested)], device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
