"""One training run's life on a daemon thread: LOADING -> TRAINING -> SAVING -> DONE/STOPPED/FAILED.

`start` checks the config and the dataset first (so bad input fails at once, in the caller), takes the
device lock, writes `config.yaml`, and starts the thread. Every exit path records a final state,
releases memory and frees the lock. The job factory is injectable so tests can drive the whole
lifecycle with a fake job in milliseconds.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from engine.config import TrainConfig
from engine.data import reading
from engine.errors import EngineError, errors_of
from engine.locales import render
from engine.system.device import DEVICE_LOCK, is_out_of_memory, release_memory
from engine.system.files import write_text_atomic
from engine.training import adapters
from engine.training.events import ErrorEvent, Event, EventLog, RunSnapshot, RunState, StatusEvent, snapshot


class Job(Protocol):
    """What the runner needs of a training job (the real `SFTJob` or a test's fake)."""

    def train(self, resume_from: str | None = None) -> None:
        """Train until done or stopped, resuming from checkpoint folder `resume_from` when given."""
        ...

    def save(self, adapter_dir: Path) -> None:
        """Write the trained adapter (with its tokenizer) to `adapter_dir`."""
        ...


OWNER_FILE = "owner.pid"  # the process training a run; a run whose owner is gone was interrupted
LOGGER = logging.getLogger(__name__)


JobFactory = Callable[[TrainConfig, list, Path, EventLog, threading.Event], Job]


def real_job_factory(config, examples, run_dir, log, stop_requested) -> Job:
    """Build the real `SFTJob` (loading the model and data); the runner's default job factory."""
    from engine.training.job import SFTJob

    return SFTJob(config, examples, run_dir, log, stop_requested)


@dataclass(frozen=True)
class RunSummary:
    """One run in the runs list: state, start time and duration (seconds), step, last losses, adapter and resume."""

    run_id: str
    run_dir: str
    state: RunState
    started: float
    has_adapter: bool
    last_loss: float | None
    last_eval_loss: float | None = None
    step: int = 0
    duration: float = 0.0
    can_resume: bool = False
    skipped_lines: int = 0  # lines of its events.jsonl that could not be read


class Runner:
    """Starts, stops and reports training runs; at most one runs at a time (the device lock)."""

    def __init__(self, runs_root: str | Path = "runs", job_factory: JobFactory = real_job_factory,
                 lock: threading.Lock = DEVICE_LOCK) -> None:
        self.runs_root = Path(runs_root)
        self.job_factory = job_factory
        self.lock = lock
        self._logs: dict[str, tuple[Path, EventLog]] = {}
        self._skipped_reported: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current_run_id: str | None = None
        self.recover_interrupted()

    # ---- control ------------------------------------------------------------------------
    def start(self, config: TrainConfig, run_dir: str | Path | None = None) -> str:
        """Pre-flight the config and data, then train in the background. Returns the run id."""
        report = _preflight(config)
        self._acquire()
        try:
            run_dir = Path(run_dir) if run_dir else self.runs_root / time.strftime("%Y%m%d-%H%M%S")
            run_dir = _unique(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / "config.yaml", config.to_yaml())
            log = EventLog(run_dir / "events.jsonl")
            log.append(StatusEvent(RunState.LOADING, rows=len(report.examples)))
            return self._launch(run_dir, log, config, report.examples, None)
        except BaseException:
            self.lock.release()
            raise

    def resume(self, run_id: str) -> str:
        """Continue a stopped, failed or interrupted run from its latest checkpoint (optimizer and
        scheduler state included), appending to the same event log."""
        run_dir = self.run_dir(run_id)
        if run_dir is None:
            raise EngineError("run_not_found", {"path": run_id}, hint="hint_pick_run")
        if self.is_live() and self.current_run_id == run_id:
            raise EngineError("run_is_live", {"run_id": run_id}, hint="hint_wait_or_stop")
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise EngineError("no_checkpoint", {"run_id": run_id})
        config = TrainConfig.from_yaml(run_dir / "config.yaml")
        report = _preflight(config)
        self._acquire()
        try:
            log = self._checked(run_dir / "events.jsonl", EventLog.reopen(run_dir / "events.jsonl"))
            log.append(StatusEvent(RunState.LOADING, rows=len(report.examples), resumed_from=checkpoint.name))
            return self._launch(run_dir, log, config, report.examples, str(checkpoint))
        except BaseException:
            self.lock.release()
            raise

    def delete(self, run_id: str) -> None:
        """Remove a run's folder (refused while it trains)."""
        run_dir = self.run_dir(run_id)
        if run_dir is None:
            raise EngineError("run_not_found", {"path": run_id}, hint="hint_pick_run")
        if self.is_live() and self.current_run_id == run_id:
            raise EngineError("run_is_live", {"run_id": run_id}, hint="hint_wait_or_stop")
        shutil.rmtree(run_dir)
        self._logs.pop(run_id, None)
        if self.current_run_id == run_id:
            self.current_run_id = None

    def recover_interrupted(self) -> list[str]:
        """Mark runs left live by a process that no longer exists as INTERRUPTED (appended to their
        events.jsonl, whatever lines it cannot read); returns their ids."""
        marked = []
        for events_file in sorted(self.runs_root.glob("*/events.jsonl")):
            run_dir = events_file.parent
            if _owner_alive(run_dir):
                continue
            try:
                log = self._checked(events_file, EventLog.reopen(events_file))
                if not snapshot(run_dir.name, log.since(0)[0]).state.is_live:
                    continue
                log.append(StatusEvent(RunState.INTERRUPTED))
                (run_dir / OWNER_FILE).unlink(missing_ok=True)
            except OSError as error:  # one unreadable run never stops the studio from starting
                LOGGER.warning(render("events_unreadable", {"path": str(events_file), "reason": str(error)}))
                continue
            marked.append(run_dir.name)
        return marked

    def _acquire(self) -> None:
        if not self.lock.acquire(blocking=False):
            raise EngineError("busy", {"run_id": self.current_run_id or "-"}, hint="hint_wait_or_stop")

    def _launch(self, run_dir: Path, log: EventLog, config: TrainConfig, examples: list,
                resume_from: str | None) -> str:
        """Record `run_dir` as the current run and start training it on its thread."""
        run_id = run_dir.name
        self._logs[run_id] = (run_dir, log)
        self.current_run_id = run_id
        self._stop.clear()
        (run_dir / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        self._thread = threading.Thread(target=self._run, name=f"train-{run_id}", daemon=True,
                                        args=(config, examples, run_dir, log, resume_from))
        self._thread.start()
        return run_id

    def stop(self) -> bool:
        """Ask the live run to stop after the current step (it saves the adapter). False if none."""
        if self._thread is None or not self._thread.is_alive():
            return False
        self._stop.set()
        return True

    def wait(self, timeout: float | None = None) -> RunState:
        """Wait for the run thread to end (at most `timeout` seconds) and return the current run's state."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.snapshot().state

    def is_live(self) -> bool:
        """Whether a run's training thread is alive now."""
        return self._thread is not None and self._thread.is_alive()

    # ---- reading ------------------------------------------------------------------------
    def events_since(self, run_id: str | None, cursor: int) -> tuple[list[Event], int]:
        """Events of `run_id` (default: the current run) from `cursor` on, and the next cursor."""
        log = self._log(run_id or self.current_run_id)
        return log.since(cursor) if log else ([], cursor)

    def snapshot(self, run_id: str | None = None) -> RunSnapshot:
        """The state, progress and last metrics of `run_id` (default: the current run); IDLE when there is none."""
        run_id = run_id or self.current_run_id
        log = self._log(run_id) or EventLog()
        return snapshot(run_id, log.since(0)[0], log.skipped)

    def run_dir(self, run_id: str) -> Path | None:
        """The folder of run `run_id`: one this runner started, else `runs_root/<run_id>` when it holds a config.yaml;
        None otherwise."""
        if run_id in self._logs:
            return self._logs[run_id][0]
        if not run_id or run_id in (".", "..") or Path(run_id).name != run_id:
            return None  # a run id is one folder name: never a path that leaves runs_root
        candidate = self.runs_root / run_id
        return candidate if (candidate / "config.yaml").is_file() else None

    def list_runs(self) -> list[RunSummary]:
        """Every run under runs_root (and any started elsewhere by this runner), newest first."""
        dirs = {p.name: p for p in self.runs_root.glob("*") if (p / "config.yaml").is_file()}
        dirs.update({run_id: path for run_id, (path, _log) in list(self._logs.items())})  # a copy: runs start
        summaries = []
        for run_id, path in dirs.items():
            log = self._log(run_id) or EventLog()
            events = log.since(0)[0]
            snap = snapshot(run_id, events, log.skipped)
            started = events[0].time if events else path.stat().st_mtime
            duration = events[-1].time - started if events else 0.0
            can_resume = not snap.state.is_live and snap.state is not RunState.DONE and \
                latest_checkpoint(path) is not None
            summaries.append(RunSummary(run_id, str(path), snap.state, started,
                                        (path / "adapter" / adapters.ADAPTER_FILE).is_file(), snap.last_loss,
                                        snap.last_eval_loss, snap.step, duration, can_resume, snap.skipped_lines))
        return sorted(summaries, key=lambda s: s.started, reverse=True)

    def _log(self, run_id: str | None) -> EventLog | None:
        if run_id is None:
            return None
        if run_id in self._logs:
            return self._logs[run_id][1]
        run_dir = self.run_dir(run_id)
        path = run_dir / "events.jsonl" if run_dir else None
        if path is None or not path.is_file():
            return None
        return self._checked(path, EventLog.read(path, tail_may_grow=_owner_alive(run_dir)))

    def _checked(self, path: Path, log: EventLog) -> EventLog:
        """`log` as read from `path`, its unreadable lines reported once (a warning in the server log),
        not on every poll that reads the file again; more bad lines later are reported again."""
        if log.skipped > self._skipped_reported.get(path, 0):
            self._skipped_reported[path] = log.skipped
            LOGGER.warning(render("events_lines_skipped", {"count": log.skipped, "path": str(path)}))
        return log

    # ---- the thread ---------------------------------------------------------------------
    def _run(self, config: TrainConfig, examples: list[dict[str, Any]], run_dir: Path, log: EventLog,
             resume_from: str | None) -> None:
        job = None
        try:
            job = self.job_factory(config, examples, run_dir, log, self._stop)
            if not self._stop.is_set():
                job.train(resume_from) if resume_from else job.train()
                log.append(StatusEvent(RunState.SAVING))
                job.save(run_dir / "adapter")
            final = RunState.STOPPED if self._stop.is_set() else RunState.DONE
            log.append(StatusEvent(final))
        except BaseException as exc:  # the thread must always end in a final state
            _write_trace(run_dir, exc)
            log.append(ErrorEvent.from_error(_as_engine_error(exc)))
            log.append(StatusEvent(RunState.FAILED))
        finally:
            del job
            release_memory()
            (run_dir / OWNER_FILE).unlink(missing_ok=True)
            self.lock.release()


def _preflight(config: TrainConfig) -> reading.DatasetReport:
    """Refuse a config with errors or a dataset without usable rows, naming the first problem."""
    problems = errors_of(config.validate())
    if problems:
        first = problems[0]
        raise EngineError(first.code, {**first.params, "field": first.field}, hint="hint_fix_config")
    report = reading.load_report(config.dataset_path)
    if not report.usable:
        first = report.errors[0]
        raise EngineError(first.code, {**first.params, "row": first.row, "field": first.field}, hint="hint_fix_rows")
    return report


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the highest step under `run_dir/checkpoints`, if any."""
    found = [p for p in adapters.checkpoint_folders(run_dir) if (p / "trainer_state.json").is_file()]
    return found[-1] if found else None


def _owner_alive(run_dir: Path) -> bool:
    try:
        pid = int((run_dir / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unique(path: Path) -> Path:
    """`path` if it is new or an empty folder, else `path-2`, `path-3`, ..."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}-{n}")).exists():
        n += 1
    return candidate


def _as_engine_error(exc: BaseException) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if is_out_of_memory(exc):
        return EngineError("out_of_memory", hint="hint_reduce_memory")
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return EngineError("train_failed", {"detail": detail}, hint="hint_debug")


def _write_trace(run_dir: Path, exc: BaseException) -> None:
    with (run_dir / "train.log").open("a", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)))
