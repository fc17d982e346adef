"""A runner's side of a live run: the thread that watches it (a job trained on that thread, a worker
process the runner started, or one it found running), the end recorded for a worker that died without
one, and the stop that is certain (cooperative first, then the worker's process group is killed).

A run with `num_gpus` > 1 is started through `accelerate launch --multi_gpu --num_processes N` (DDP): the
launcher is then the worker worker.json names and the process that holds the device lock's file, and each
of its N processes (ranks) runs the worker's `main` and dies with it. On a machine without CUDA the same
command trains N CPU processes over gloo (`accelerate launch --cpu` would start only one).

On Windows (`oslocks.WINDOWS`) the worker is started in a new process group, the device lock is handed over
by the lock file's path (`oslocks`: the runner keeps its part of the lock until the worker holds its own), and
a kill ends the worker's process tree with `taskkill /T /F`; as that finds no tree under a worker that has died
already, the processes it started are also remembered while it lives (at launch, then every TREE_REFRESH_S) and
those still running are killed after it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.system import oslocks
from engine.training.events import ErrorEvent, EventLog, LogEvent, RunState, StatusEvent, snapshot
from engine.training.worker import STOP_FILE, StopFile, live_worker, record_worker

ROOT = Path(__file__).resolve().parents[2]  # the folder `engine` is in: the worker imports it from there
STOP_GRACE_S = 30.0  # at least this long after a stop before a worker that has not ended is killed
FIRST_STEPS_GRACE = 4  # times STOP_GRACE_S while a run's step time is not known yet
LOG_TAIL_LINES = 20  # of train.log, kept with a worker's unexpected end
LOG_SCAN_LINES = 200  # of train.log, searched for an out-of-memory traceback of a rank that writes no events
OUT_OF_MEMORY_MARKS = ("torch.OutOfMemoryError", "CUDA out of memory", "torch.cuda.OutOfMemoryError")
NEW_PROCESS_GROUP = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)  # Windows' creation flag
HANDOVER_WAIT_S = 60.0  # Windows: at most this long for a starting worker to take the device lock over
KILLED_RETURNCODE = -getattr(signal, "SIGKILL", 9)  # a POSIX worker's end by SIGKILL (Windows has no signal)
TREE_REFRESH_S = 2.0  # Windows: how often the processes a live worker started are looked at again
_started_by: dict[int, list] = {}  # Windows: worker pid -> the psutil.Process objects it started, as last seen


class RunWatch:
    """One live run as a runner sees it; `alive()` until the run's final state is recorded. `pid` is its
    worker's process (None for a job trained on the runner's own thread)."""

    def __init__(self, run_dir: Path, pid: int | None = None) -> None:
        self.run_dir = run_dir
        self.pid = pid
        self.stop_file = StopFile(run_dir / STOP_FILE)
        self._thread: threading.Thread | None = None

    def start(self, target: Callable, *args) -> "RunWatch":
        """Watch the run on a daemon thread running `target(*args)`."""
        self._thread = threading.Thread(target=target, args=args, name=f"run-{self.run_dir.name}", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        """Whether the run has not reached its final state yet."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait (at most `timeout` seconds) for the run's final state."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, grace: float) -> None:
        """Ask the run to stop after its step; a worker still running `grace` seconds later is killed (its
        whole process group), and the run is recorded STOPPED."""
        self.stop_file.set()
        if self.pid is not None:
            threading.Thread(target=self._kill_after, args=(grace,), name=f"stop-{self.run_dir.name}",
                             daemon=True).start()

    def _kill_after(self, grace: float) -> None:
        self.join(grace)
        if self.alive() and live_worker(self.run_dir) == self.pid:
            kill_group(self.pid)


def stop_grace(events: list, floor: float = STOP_GRACE_S) -> float:
    """How long a stop may take: `floor` seconds, or three of the run's last steps when they are longer; before
    two steps are logged, FIRST_STEPS_GRACE times `floor` (a first step also warms up, and takes longest on a slow
    or busy computer: killed then, the run would end without the adapter the stop promised)."""
    logs = [e for e in events if isinstance(e, LogEvent)]
    for later, earlier in zip(reversed(logs), reversed(logs[:-1])):
        if later.step > earlier.step:
            return max(floor, 3 * (later.time - earlier.time) / (later.step - earlier.step))
    return FIRST_STEPS_GRACE * floor


def kill_group(pid: int) -> None:
    """Kill the process group worker `pid` leads (the worker and anything it started; on Windows its process
    tree); gone already is fine."""
    if oslocks.WINDOWS:
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(pid)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        _kill_remembered(pid)
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def remember_tree(pid: int) -> None:
    """Windows: note the processes worker `pid` has started (its ranks, say), so that a kill after it died can
    still end them; a worker gone already keeps the last note."""
    import psutil

    try:
        _started_by[pid] = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        pass


def _kill_remembered(pid: int) -> None:
    """Windows: kill the processes worker `pid` was last seen to have started that still run (psutil's
    `is_running` also tells a reused pid apart)."""
    import psutil

    for child in _started_by.pop(pid, []):
        try:
            if child.is_running():
                child.kill()
        except psutil.Error:
            pass


def launch_worker(run_dir: Path, resume_from: str | None, job_spec: str | None, lock_fd: int | None):
    """Start the worker process of `run_dir` in its own session (process group), its output appended to
    train.log (never a pipe nobody reads), holding the device lock's file `lock_fd` (on Windows: once this
    returns, the worker holds the lock by its path); names it in worker.json. Returns the Popen."""
    command = worker_command(run_dir, resume_from, job_spec)
    if oslocks.WINDOWS:
        return _launch_on_windows(run_dir, command, lock_fd)
    if lock_fd is not None and command[1:3] == ["-m", "engine.training.worker"]:  # one process: it frees the lock
        command += ["--lock-fd", str(lock_fd)]                                    # as soon as the run has ended
    with (run_dir / "train.log").open("ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, pass_fds=() if lock_fd is None else (lock_fd,),
                                   env=_worker_env())
    record_worker(run_dir, process.pid)
    return process


def _launch_on_windows(run_dir: Path, command: list[str], lock_fd: int | None) -> subprocess.Popen:
    """`launch_worker` on Windows: the worker (rank 0 of several) is told the lock file's path, given the lock's
    handover part, and waited for until it holds it (or has ended, or HANDOVER_WAIT_S passed)."""
    lock_path = None if lock_fd is None else oslocks.lock_file_path(lock_fd)
    if lock_path is not None:
        command += ["--lock-path", str(lock_path)]  # the worker's own arguments end every command
        oslocks.start_handover(lock_fd)
    with (run_dir / "train.log").open("ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   creationflags=NEW_PROCESS_GROUP, env=_worker_env())
    record_worker(run_dir, process.pid)
    deadline = time.monotonic() + HANDOVER_WAIT_S
    while lock_path is not None and process.poll() is None and not oslocks.handover_taken(lock_path):
        if time.monotonic() >= deadline:
            break
        time.sleep(oslocks.RETRY_S)
    remember_tree(process.pid)
    return process


def _worker_env() -> dict[str, str]:
    """The environment of a worker: this one, with the folder `engine` is in first on PYTHONPATH."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def worker_command(run_dir: Path, resume_from: str | None, job_spec: str | None) -> list[str]:
    """The command that trains `run_dir`: the worker module, or for `num_gpus` > 1 in its config.yaml
    accelerate's launcher running it in that many processes (on a free port of this machine)."""
    module = ["-m", "engine.training.worker", str(run_dir)]
    module += ["--resume", resume_from] if resume_from else []
    module += ["--job", job_spec] if job_spec else []
    processes = TrainConfig.from_yaml(run_dir / "config.yaml").num_gpus
    if processes <= 1:
        return [sys.executable, *module]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), *module]


def free_port() -> int:
    """A TCP port of this machine that nothing listens on now (for the ranks of a run to meet on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def watch_launched(process: subprocess.Popen, run_dir: Path, on_end: Callable[[], None]) -> None:
    """Wait for a worker this runner started, record its end when it left none, then `on_end()`."""
    try:
        if oslocks.WINDOWS:  # the Popen's open process handle keeps the pid from being reused there
            _wait_remembering_tree(process)
        else:
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped: its pid is kept
        kill_group(process.pid)  # whatever it started and left behind (holding the device lock's file, say)
        record_end(run_dir, process.wait())
    finally:
        on_end()


def _wait_remembering_tree(process: subprocess.Popen) -> None:
    """Windows: wait for a launched worker to end, noting the processes it has started every TREE_REFRESH_S."""
    while True:
        remember_tree(process.pid)
        try:
            process.wait(timeout=TREE_REFRESH_S)
            return
        except subprocess.TimeoutExpired:
            pass


def watch_attached(pid: int, run_dir: Path, owner_alive: Callable[[], bool], poll: float = 0.2) -> None:
    """Follow a worker another process started until it ends; when that process is gone too (nobody else
    will), record the run INTERRUPTED if it was left live."""
    while live_worker(run_dir) == pid:
        time.sleep(poll)
    if not owner_alive():
        record_end(run_dir, None)


def record_end(run_dir: Path, returncode: int | None) -> None:
    """Give a run whose worker ended without a final state one: STOPPED when a stop was asked for; FAILED
    with the cause otherwise (its own error event, else killed by the system, else stopped unexpectedly
    with the end of train.log); INTERRUPTED when the exit is unknown (`returncode` None)."""
    path = run_dir / "events.jsonl"
    log = EventLog.reopen(path)
    events = log.since(0)[0]
    if not snapshot(run_dir.name, events).state.is_live:
        return
    if StopFile(run_dir / STOP_FILE).is_set():
        log.append(StatusEvent(RunState.STOPPED))
        return
    if returncode is None:
        log.append(StatusEvent(RunState.INTERRUPTED))
        return
    starts = [i for i, e in enumerate(events) if isinstance(e, StatusEvent) and e.state is RunState.LOADING]
    if not any(isinstance(e, ErrorEvent) for e in events[starts[-1] if starts else 0:]):
        log.append(ErrorEvent.from_error(exit_cause(run_dir, returncode)))
    log.append(StatusEvent(RunState.FAILED))


def exit_cause(run_dir: Path, returncode: int) -> EngineError:
    """Why a worker ended with `returncode` and no error of its own: killed (SIGKILL: most likely by the
    system for lack of memory); out of GPU memory in a process that writes no events (another GPU's rank of a
    multi-GPU run, whose traceback is in train.log); or stopped unexpectedly; with the last lines of train.log."""
    if returncode == KILLED_RETURNCODE:
        return EngineError("killed_out_of_memory", hint="hint_reduce_memory")
    how = _signal_name(-returncode) if returncode < 0 else str(returncode)
    try:
        lines = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    if any(mark in line for line in lines[-LOG_SCAN_LINES:] for mark in OUT_OF_MEMORY_MARKS):
        return EngineError("out_of_memory", {"log_tail": tail}, hint="hint_reduce_memory")
    return EngineError("worker_stopped_unexpectedly", {"exit": how, "log_tail": tail}, hint="hint_see_train_log")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
