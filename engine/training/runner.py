"""Training runs' lives: LOADING -> TRAINING -> SAVING -> DONE/STOPPED/FAILED, each in a worker process.

`start` checks the config and the dataset first (so bad input fails at once, in the caller), takes the
device lock, writes `config.yaml` and `rows.jsonl`, and starts the run's worker process
(`engine/training/worker.py`), handing it the lock; a thread of the runner waits for the worker and records
its end when it left none, and the run's events are followed from `events.jsonl`. A runner also follows the
workers other processes started (the CLI, an app that was restarted) and can stop them. With an injected job
factory (tests) the same `run_job` trains on a thread of this process instead, in milliseconds.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Protocol

from engine.config import TrainConfig
from engine.data import reading
from engine.errors import EngineError, errors_of
from engine.locales import render
from engine.system.device import DeviceLock
from engine.system.files import write_text_atomic
from engine.training import adapters
from engine.training.events import Event, EventLog, RunSnapshot, RunState, StatusEvent, snapshot
from engine.training.follow import EventFollower
from engine.training.launch import STOP_GRACE_S, RunWatch, launch_worker, stop_grace, watch_attached, watch_launched
from engine.training.summaries import RunSummaries, RunSummary
from engine.training.worker import STOP_FILE, StopFile, live_worker, run_job, write_rows


class Job(Protocol):
    """What the runner needs of a training job (the real `SFTJob` or a test's fake)."""

    def train(self, resume_from: str | None = None) -> None:
        """Train until done or stopped, resuming from checkpoint folder `resume_from` when given."""
        ...

    def save(self, adapter_dir: Path) -> None:
        """Write the trained adapter (with its tokenizer) to `adapter_dir`."""
        ...


OWNER_FILE = "owner.pid"  # the process watching a run; a run whose owner and worker are gone was interrupted
LOCK_FILE = ".device.lock"  # in the runs folder: one GPU job at a time, across processes
LOGGER = logging.getLogger(__name__)


JobFactory = Callable[[TrainConfig, list, Path, EventLog, StopFile], Job]


class Runner:
    """Starts, stops and reports training runs; at most one trains at a time (the device lock, shared with
    generation and with other processes using the same runs folder)."""

    def __init__(self, runs_root: str | Path = "runs", job_factory: JobFactory | None = None,
                 lock: DeviceLock | None = None, worker_job: str | None = None) -> None:
        self.runs_root = Path(runs_root)
        self.job_factory = job_factory  # None: each run trains in a worker process of its own
        self.worker_job = worker_job  # the worker's job factory as MODULE:CALLABLE (tests); None: the real one
        self.lock = lock or DeviceLock(self.runs_root / LOCK_FILE)
        self.stop_grace = STOP_GRACE_S  # seconds at least between a stop and killing a worker that has not ended
        self._logs: dict[str, tuple[Path, EventLog | EventFollower]] = {}
        self._skipped_reported: dict[Path, int] = {}
        self._summaries = RunSummaries(lambda run_id: self._log(run_id) or EventLog())
        self._watch: RunWatch | None = None
        self.current_run_id: str | None = None
        self.recover_interrupted()

    # ---- control ------------------------------------------------------------------------
    def start(self, config: TrainConfig, run_dir: str | Path | None = None) -> str:
        """Pre-flight the config and data, then train in the background. Returns the run id."""
        examples = _preflight(config)
        self._acquire("-")
        try:
            run_dir = _new_run_dir(Path(run_dir), True) if run_dir else \
                _new_run_dir(self.runs_root / time.strftime("%Y%m%d-%H%M%S"), False)
            self.lock.label(run_dir.name)
            write_text_atomic(run_dir / "config.yaml", config.to_yaml())
            log = EventLog(run_dir / "events.jsonl")
            log.append(StatusEvent(RunState.LOADING, rows=len(examples)))
            return self._launch(run_dir, log, config, examples, None)
        except BaseException:
            self.lock.release()
            raise

    def resume(self, run_id: str) -> str:
        """Continue a stopped, failed or interrupted run from its latest checkpoint (optimizer and
        scheduler state included), appending to the same event log."""
        run_dir = self._existing(run_id)
        checkpoint = adapters.latest_checkpoint(run_dir)
        if checkpoint is None:
            raise EngineError("no_checkpoint", {"run_id": run_id})
        config = TrainConfig.from_yaml(run_dir / "config.yaml")
        examples = _preflight(config)
        self._acquire(run_id)
        try:
            log = self._checked(run_dir / "events.jsonl", EventLog.reopen(run_dir / "events.jsonl"))
            log.append(StatusEvent(RunState.LOADING, rows=len(examples), resumed_from=checkpoint.name))
            return self._launch(run_dir, log, config, examples, str(checkpoint))
        except BaseException:
            self.lock.release()
            raise

    def delete(self, run_id: str) -> None:
        """Remove a run's folder (refused while it trains, here or in a worker process)."""
        run_dir = self._existing(run_id)
        shutil.rmtree(run_dir)
        self._logs.pop(run_id, None)
        if self.current_run_id == run_id:
            self.current_run_id = None

    def _existing(self, run_id: str) -> Path:
        """The folder of run `run_id`, which is not training now; raises `run_not_found` or `run_is_live`."""
        run_dir = self.run_dir(run_id)
        if run_dir is None:
            raise EngineError("run_not_found", {"path": run_id}, hint="hint_pick_run")
        if (self.is_live() and self.current_run_id == run_id) or live_worker(run_dir) is not None:
            raise EngineError("run_is_live", {"run_id": run_id}, hint="hint_wait_or_stop")
        return run_dir

    def recover_interrupted(self) -> list[str]:
        """Follow the runs a live worker process trains (pid and start time match), and mark runs left live by
        processes that no longer exist as INTERRUPTED (appended to their events.jsonl, whatever lines it cannot
        read); returns the ids of those marked."""
        marked = []
        for events_file in sorted(self.runs_root.glob("*/events.jsonl")):
            run_dir = events_file.parent
            worker = live_worker(run_dir)
            if worker is not None:
                self._attach(run_dir, worker)
                continue
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

    def _acquire(self, holder: str) -> None:
        if not self.lock.acquire(holder):
            raise EngineError("busy", {"run_id": self.lock.holder()}, hint="hint_wait_or_stop")

    def _launch(self, run_dir: Path, log: EventLog, config: TrainConfig, examples: list,
                resume_from: str | None) -> str:
        """Record `run_dir` as the current run and start training it: on a thread with an injected job
        factory, else in a worker process that the device lock is handed to (the last step: it cannot fail)."""
        run_id = run_dir.name
        self.current_run_id = run_id
        StopFile(run_dir / STOP_FILE).clear()
        write_rows(run_dir, examples)
        (run_dir / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        if self.job_factory is not None:
            self._logs[run_id] = (run_dir, log)
            self._watch = RunWatch(run_dir).start(self._train_here, config, examples, run_dir, log, resume_from)
            return run_id
        process = launch_worker(run_dir, resume_from, self.worker_job, self.lock.fd)
        self._logs[run_id] = (run_dir, EventFollower(run_dir / "events.jsonl", lambda: _owner_alive(run_dir)))
        self._watch = RunWatch(run_dir, process.pid).start(
            watch_launched, process, run_dir, lambda: (run_dir / OWNER_FILE).unlink(missing_ok=True))
        self.lock.release()  # the worker holds the lock's file now: the lock lasts exactly as long as it does
        return run_id

    def _train_here(self, config: TrainConfig, examples: list, run_dir: Path, log: EventLog,
                    resume_from: str | None) -> None:
        """The in-process thread mode: train on this thread, then free the run and the lock."""
        try:
            run_job(self.job_factory, config, examples, run_dir, log, StopFile(run_dir / STOP_FILE), resume_from)
        finally:
            (run_dir / OWNER_FILE).unlink(missing_ok=True)
            self.lock.release()

    def _attach(self, run_dir: Path, pid: int) -> None:
        """Follow run `run_dir`, which worker `pid` of another process trains, from its first event on."""
        run_id = run_dir.name
        self._logs[run_id] = (run_dir, EventFollower(run_dir / "events.jsonl", lambda: _owner_alive(run_dir)))
        self.current_run_id = run_id
        self._watch = RunWatch(run_dir, pid).start(watch_attached, pid, run_dir, lambda: _pid_file_alive(run_dir))

    def discover(self) -> None:
        """Follow the run that another process's worker trains now (the CLI's, another app's), when this runner
        follows none: the device lock's file names it."""
        if self._watch is not None and self._watch.alive():
            return
        run_dir = self.run_dir(self.lock.holder())
        worker = live_worker(run_dir) if run_dir is not None else None
        if worker is not None:
            self._attach(run_dir, worker)

    def stop(self) -> bool:
        """Ask the live run to stop after the current step (it saves the adapter); a worker that has not ended
        a grace period later is killed and the run recorded STOPPED. False if no run is live."""
        if not self.is_live():
            return False
        self._watch.stop(stop_grace(self.events_since(self.current_run_id, 0)[0], self.stop_grace))
        return True

    def wait(self, timeout: float | None = None) -> RunState:
        """Wait for the live run's final state (at most `timeout` seconds) and return the current run's state."""
        if self._watch is not None:
            self._watch.join(timeout)
        return self.snapshot().state

    def is_live(self) -> bool:
        """Whether a run is training now (started here, or by another process and followed here)."""
        self.discover()
        return self._watch is not None and self._watch.alive()

    def worker_pid(self, run_id: str) -> int | None:
        """The process id of the worker training run `run_id` now, None when none does."""
        run_dir = self.run_dir(run_id)
        return live_worker(run_dir) if run_dir is not None else None

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
        self.discover()
        dirs = {p.name: p for p in self.runs_root.glob("*") if (p / "config.yaml").is_file()}
        dirs.update({run_id: path for run_id, (path, _log) in list(self._logs.items())})  # a copy: runs start
        return self._summaries.newest_first(dirs)

    def _log(self, run_id: str | None) -> EventLog | EventFollower | None:
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


def _preflight(config: TrainConfig) -> list:
    """The rows a run trains on: its dataset's examples, or for a DPO run its preference pairs. Refuses a config
    with errors, a DPO run without the adapter it continues or on data without chosen/rejected pairs, or a dataset
    without usable rows (an SFT run on a preference file without `sft_on_chosen` among them), naming the first
    problem."""
    problems = errors_of(config.validate())
    if problems:
        first = problems[0]
        raise EngineError(first.code, {**first.params, "field": first.field}, hint="hint_fix_config")
    if config.method == "dpo" and not config.init_adapter:
        raise EngineError("config_dpo_needs_adapter", {"field": "init_adapter"}, hint="hint_fix_config")
    report = reading.load_config_dataset(config)
    if config.method == "dpo":
        if report.format is not None and report.kind != "preference":
            raise EngineError("dpo_needs_preferences", {"path": config.dataset_path, "kind": report.kind},
                              hint="hint_dpo_data")
        if report.preference_examples:
            return report.preference_examples
    if not report.usable:
        first = report.errors[0]
        raise EngineError(first.code, {**first.params, "row": first.row, "field": first.field}, hint="hint_fix_rows")
    return report.examples




def _owner_alive(run_dir: Path) -> bool:
    """Whether a process still looks after run `run_dir`: its worker, or the process that started it."""
    return _pid_file_alive(run_dir) or live_worker(run_dir) is not None


def _pid_file_alive(run_dir: Path) -> bool:
    """Whether the process named in the run's owner.pid (the one that started and watches it) exists."""
    try:
        pid = int((run_dir / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    import psutil  # not os.kill(pid, 0): on Windows that ends the process instead of asking about it

    return psutil.pid_exists(pid)


def _new_run_dir(path: Path, may_be_empty: bool) -> Path:
    """Create and return the run folder: `path` (or, when `may_be_empty`, the empty folder already there), else
    the first free `path-2`, `path-3`, ... Each is created with an atomic mkdir, so two processes starting in
    the same second never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            if n == 1 and may_be_empty and candidate.is_dir() and not any(candidate.iterdir()):
                return candidate
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
