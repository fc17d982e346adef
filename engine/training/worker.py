"""One run's training in its own process: `python -m engine.training.worker RUN_DIR [--resume CHECKPOINT]
[--job MODULE:CALLABLE]`.

The worker trains from `RUN_DIR/config.yaml` and `RUN_DIR/rows.jsonl` (the rows the runner's pre-flight
accepted), appends to `RUN_DIR/events.jsonl` and names itself in `worker.json` (pid and process start time,
so a reused pid is never taken for it). A crash here (CUDA, bitsandbytes, the system's OOM killer) ends this
process only; the runner that started it records why. `run_job` is the one body that takes a job to its
final state, here and in the runner's in-process thread mode.

In a multi-GPU run (`num_gpus` > 1) accelerate's launcher runs `main` once per process (rank): every rank
trains and checks the stop file, only rank 0 writes events (and, through the trainer, the adapter); worker.json
names the launcher, which started the ranks and holds the device lock, and each rank dies with it.

The device lock comes with the inherited file (`--lock-fd`) on POSIX; on Windows the worker (rank 0) takes it
over by the file's path (`--lock-path`, `engine.system.oslocks`) before it trains, or fails the run as busy.
"""
from __future__ import annotations

import argparse
import ctypes
import errno
import importlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.system import oslocks
from engine.system.device import DeviceLock, is_out_of_memory, release_memory
from engine.system.files import write_text_atomic
from engine.training.events import ErrorEvent, EventLog, RunState, StatusEvent

WORKER_FILE = "worker.json"  # {"pid": ..., "started": ...}: the process training the run
STOP_FILE = "stop"  # present: the run was asked to stop
ROWS_FILE = "rows.jsonl"  # the rows the run trains on, as the runner accepted them
HANDOVER_S = 30.0  # Windows: how long a worker tries to take the device lock its runner hands over


class StopFile:
    """A stop request that crosses processes: the file `path` exists once a stop was asked for. It has the
    `is_set`/`set`/`wait` of the `threading.Event` a job and its callback check."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self.path.exists()

    def set(self) -> None:
        """Request the stop."""
        self.path.touch()

    def clear(self) -> None:
        """Forget an earlier request (a resumed run starts unstopped)."""
        self.path.unlink(missing_ok=True)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a stop is requested (at most `timeout` seconds); whether it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True


def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def live_worker(run_dir: Path) -> int | None:
    """The pid of the worker process `run_dir/worker.json` names when that process still runs: the same pid
    AND the same start time (a pid the system gave to another process since does not count)."""
    try:
        record = json.loads((Path(run_dir) / WORKER_FILE).read_text(encoding="utf-8"))
        pid, started = int(record["pid"]), float(record["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now_started = process_started(pid)
    return pid if now_started is not None and abs(now_started - started) < 0.01 else None


def record_worker(run_dir: Path, pid: int) -> None:
    """Name process `pid` as the run's worker in `worker.json`, with its start time."""
    write_text_atomic(Path(run_dir) / WORKER_FILE, json.dumps({"pid": pid, "started": process_started(pid)}))


def run_job(job_factory: Callable, config: TrainConfig, examples: list[dict[str, Any]], run_dir: Path,
            log: EventLog, stop_requested, resume_from: str | None) -> RunState:
    """Build the job and train it to a final state (DONE, STOPPED or FAILED, with the cause), saving the
    adapter; every exit path records that state and releases memory. Returns the state."""
    job = None
    try:
        job = job_factory(config, examples, run_dir, log, stop_requested)
        if not stop_requested.is_set():
            job.train(resume_from) if resume_from else job.train()
            log.append(StatusEvent(RunState.SAVING))
            job.save(run_dir / "adapter")
        final = RunState.STOPPED if stop_requested.is_set() else RunState.DONE
        log.append(StatusEvent(final))
    except BaseException as exc:  # the run must always end in a final state
        _write_trace(run_dir, exc)
        log.append(ErrorEvent.from_error(as_engine_error(exc)))
        log.append(StatusEvent(RunState.FAILED))
        final = RunState.FAILED
    finally:
        del job
        release_memory()
    return final


def as_engine_error(exc: BaseException) -> EngineError:
    """The worded error for what ended a run: its own EngineError, a full disk, out of memory, or the first
    line of anything else."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return EngineError("disk_full", {"path": exc.filename or "-"}, hint="hint_free_disk")
    if is_out_of_memory(exc):
        return EngineError("out_of_memory", hint="hint_reduce_memory")
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return EngineError("train_failed", {"detail": detail}, hint="hint_debug")


def _write_trace(run_dir: Path, exc: BaseException) -> None:
    with (run_dir / "train.log").open("a", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)))


def real_job_factory(config, examples, run_dir, log, stop_requested):
    """Build the real `SFTJob` (loading the model and data): the job a worker trains unless told otherwise."""
    from engine.training.job import SFTJob

    return SFTJob(config, examples, run_dir, log, stop_requested)


def load_factory(spec: str | None) -> Callable:
    """The job factory `MODULE:CALLABLE` names (tests run a fake job through a real worker), else the real one."""
    if not spec:
        return real_job_factory
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def write_rows(run_dir: Path, examples: list[dict[str, Any]]) -> None:
    """Keep the rows a run trains on in its folder (atomically), for its worker to read."""
    write_text_atomic(run_dir / ROWS_FILE, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in examples))


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows `write_rows` kept."""
    text = (run_dir / ROWS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class SilentLog:
    """The event log of a rank other than 0 in a multi-GPU run: rank 0 alone writes the run's events."""

    def append(self, event) -> None:
        """Drop `event` (rank 0 appends the same one)."""


def process_rank() -> int:
    """This process's rank in a multi-GPU run (the launcher's RANK), 0 when it trains alone."""
    return int(os.environ.get("RANK", "0"))


def launched_as_rank() -> bool:
    """Whether this process is one of several ranks that accelerate's launcher started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def die_with_launcher() -> None:
    """Have the system kill this rank when the launcher that started it ends (killed with its process group by
    a stop that timed out, say): the launcher starts each rank in a session of its own, out of that group. A
    launcher gone already ends this rank at once. Linux only (prctl); elsewhere the ranks end with their
    collective operations' timeout."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() == 1:
        os._exit(1)


def main(argv: list[str]) -> int:
    """Train the run in `argv`'s folder to its final state; 0 when it ended DONE or STOPPED, 1 when FAILED."""
    parser = argparse.ArgumentParser(prog="python -m engine.training.worker")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", help="the checkpoint folder to continue from")
    parser.add_argument("--job", help="MODULE:CALLABLE building the job (default: the real SFTJob)")
    parser.add_argument("--lock-fd", type=int, help="the device lock's file, handed over by the runner")
    parser.add_argument("--lock-path", help="Windows: the device lock's file, to take over from the runner")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if launched_as_rank():
        die_with_launcher()  # worker.json names the launcher (launch_worker wrote it)
    else:
        record_worker(run_dir, os.getpid())
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    log = EventLog.reopen(run_dir / "events.jsonl") if process_rank() == 0 else SilentLog()
    lock_fd = args.lock_fd
    if args.lock_path and process_rank() == 0:
        lock_fd = oslocks.take_handover(Path(args.lock_path), HANDOVER_S)
        if lock_fd is None:  # never train without the lock: the run fails as refused for a busy device
            refuse_busy(log, Path(args.lock_path))
            return 1
    final = run_job(load_factory(args.job), config, read_rows(run_dir), run_dir, log,
                    StopFile(run_dir / STOP_FILE), args.resume)
    if lock_fd is not None:  # the run has ended and its memory is released: the device is free again
        oslocks.end_hold(lock_fd)
    return 1 if final is RunState.FAILED else 0


def refuse_busy(log: EventLog, lock_path: Path) -> None:
    """End a run whose worker could not take the device lock over (Windows) as FAILED, the device busy."""
    error = EngineError("busy", {"run_id": DeviceLock(lock_path).holder()}, hint="hint_wait_or_stop")
    log.append(ErrorEvent.from_error(error))
    log.append(StatusEvent(RunState.FAILED))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
