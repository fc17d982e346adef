"""The engine's Windows branches, taken on Linux with the platform flag flipped and a fake `msvcrt` that locks
bytes per open file the way Windows does: the device lock on two bytes and its gapless handover to a worker,
the worker started in a new process group and its tree killed with taskkill, no `os.pwrite`, `os.waitid` or
`resource`; and every engine module importing with `fcntl` and `resource` missing."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.presets import SAMPLE_DATASET
from engine.system import device, oslocks
from engine.system.device import DeviceLock
from engine.training import launch, worker
from engine.training.events import ErrorEvent, EventLog, RunState, StatusEvent

ROOT = Path(__file__).resolve().parents[1]


class FakeMsvcrt(types.ModuleType):
    """`msvcrt.locking` as Windows behaves: a locked byte belongs to one open file (handle); locking it through
    another fails at once (LK_NBLCK), and unlocking a byte the handle does not hold is an error."""

    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.owners: dict[tuple[int, int, int], int] = {}  # (device, inode, offset) -> the fd holding it
        self.calls: list[tuple[int, int]] = []

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        status = os.fstat(fd)
        key = (status.st_dev, status.st_ino, os.lseek(fd, 0, os.SEEK_CUR))
        self.calls.append((mode, key[2]))
        if mode == self.LK_NBLCK:
            if key in self.owners:
                raise OSError(errno.EACCES, "locked")
            self.owners[key] = fd
        elif mode == self.LK_UNLCK:
            if self.owners.get(key) != fd:
                raise OSError(errno.EACCES, "not locked by this handle")
            del self.owners[key]

    def held_offsets(self) -> set[int]:
        return {key[2] for key in self.owners}


@pytest.fixture
def windows(monkeypatch):
    """The Windows branches on: the platform flag flipped, a fake msvcrt, and fcntl/pwrite/waitid unusable."""
    fake = FakeMsvcrt()
    monkeypatch.setattr(oslocks, "WINDOWS", True)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.delattr(os, "pwrite")
    monkeypatch.delattr(os, "waitid")
    monkeypatch.delattr(os, "killpg")
    return fake


def test_the_lock_holds_both_bytes_past_the_holder_text_which_stays_readable(tmp_path, windows):
    lock, other = DeviceLock(tmp_path / "device.lock"), DeviceLock(tmp_path / "device.lock")
    assert lock.acquire("run-1")
    assert windows.held_offsets() == {oslocks.MAIN_BYTE, oslocks.HANDOVER_BYTE}
    assert other.holder() == "run-1" and other.locked() and not other.acquire("chat")
    lock.label("run-2")
    assert other.holder() == "run-2"
    lock.release()
    assert windows.held_offsets() == set() and not other.locked()
    assert other.acquire("chat") and other.holder() == "chat"
    other.release()


def test_the_handover_leaves_no_instant_when_the_device_is_free(tmp_path, windows):
    path = tmp_path / "device.lock"
    runner_lock, others = DeviceLock(path), DeviceLock(path)
    assert runner_lock.acquire("run-1")
    oslocks.start_handover(runner_lock.fd)  # the worker is starting: the runner keeps MAIN
    assert windows.held_offsets() == {oslocks.MAIN_BYTE}
    assert others.locked() and not others.acquire("chat") and not oslocks.handover_taken(path)
    worker_fd = oslocks.take_handover(path, timeout=1)  # the worker, by the file's path
    assert worker_fd is not None and oslocks.handover_taken(path)
    runner_lock.release()
    assert windows.held_offsets() == {oslocks.HANDOVER_BYTE}
    assert others.locked() and not others.acquire("chat") and others.holder() == "run-1"
    assert windows.held_offsets() == {oslocks.HANDOVER_BYTE}  # the tests gave MAIN back at once
    oslocks.end_hold(worker_fd)  # the run has ended
    assert windows.held_offsets() == set() and others.acquire("chat")
    others.release()


def test_a_worker_that_cannot_take_the_lock_over_gives_up_after_its_timeout(tmp_path, windows):
    path = tmp_path / "device.lock"
    holder = DeviceLock(path)
    assert holder.acquire("chat")
    assert oslocks.take_handover(path, timeout=0.1) is None
    holder.release()


def run_folder(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(TrainConfig(dataset_path=str(SAMPLE_DATASET)).to_yaml(), encoding="utf-8")
    worker.write_rows(run_dir, [{"prompt": "hi", "response": "hello"}])
    return run_dir


def last_state(run_dir: Path) -> RunState:
    return [e for e in EventLog.reopen(run_dir / "events.jsonl").since(0)[0] if isinstance(e, StatusEvent)][-1].state


def test_a_windows_worker_takes_the_lock_by_path_trains_and_frees_it(tmp_path, windows, monkeypatch):
    monkeypatch.setenv("FAKE_JOB", "steps=2")
    run_dir, path = run_folder(tmp_path), tmp_path / "device.lock"
    runner_lock = DeviceLock(path)
    assert runner_lock.acquire("run-1")
    oslocks.start_handover(runner_lock.fd)
    runner_lock.release()  # the runner gone already: the worker takes the free lock all the same
    assert worker.main([str(run_dir), "--job", "tests.conftest:worker_fake_job", "--lock-path", str(path)]) == 0
    took = [call for call in windows.calls if call == (FakeMsvcrt.LK_NBLCK, oslocks.HANDOVER_BYTE)]
    assert took and windows.held_offsets() == set()
    assert last_state(run_dir) is RunState.DONE


def test_a_windows_worker_refused_the_lock_fails_the_run_as_busy_and_never_trains(tmp_path, windows, monkeypatch):
    monkeypatch.setenv("FAKE_JOB", "steps=2")
    monkeypatch.setattr(worker, "HANDOVER_S", 0.1)
    run_dir, path = run_folder(tmp_path), tmp_path / "device.lock"
    chat = DeviceLock(path)
    assert chat.acquire("chat")
    assert worker.main([str(run_dir), "--job", "tests.conftest:worker_fake_job", "--lock-path", str(path)]) == 1
    events = EventLog.reopen(run_dir / "events.jsonl").since(0)[0]
    errors = [event for event in events if isinstance(event, ErrorEvent)]
    assert [error.code for error in errors] == ["busy"] and errors[0].params == {"run_id": "chat"}
    assert last_state(run_dir) is RunState.FAILED and not (run_dir / "adapter").exists()
    chat.release()


class FakePopen:
    """A starting worker that takes the lock handed over by the path on its command line, as the real one does,
    once it is running (at the third `poll`)."""

    def __init__(self, command, **options) -> None:
        self.command, self.options, self.pid = command, options, os.getpid()
        self.polls, self.lock_fd = 0, None

    def poll(self):
        self.polls += 1
        if self.polls == 3:
            self.lock_fd = oslocks.take_handover(Path(self.command[self.command.index("--lock-path") + 1]), 1)
        return None


def test_launch_on_windows_starts_a_new_process_group_and_waits_for_the_worker_to_hold_the_lock(
        tmp_path, windows, monkeypatch):
    monkeypatch.setattr(launch.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(launch, "_started_by", {})  # the tree noted at launch (this process's) is left here
    monkeypatch.setattr(launch, "worker_command", lambda *args: [sys.executable, "-m", "engine.training.worker"])
    run_dir, path = run_folder(tmp_path), tmp_path / "device.lock"
    runner_lock = DeviceLock(path)
    assert runner_lock.acquire("run-1")
    process = launch.launch_worker(run_dir, None, None, runner_lock.fd)
    assert process.options["creationflags"] == launch.NEW_PROCESS_GROUP == 0x200
    assert "pass_fds" not in process.options and "start_new_session" not in process.options
    assert process.command[-2:] == ["--lock-path", str(path)]
    assert process.polls >= 3 and process.lock_fd is not None  # launch waited until the worker held it
    assert oslocks.handover_taken(path) and worker.live_worker(run_dir) == os.getpid()
    assert os.getpid() in launch._started_by, "the worker's tree is noted as soon as it runs"
    runner_lock.release()
    assert DeviceLock(path).locked()  # the worker's alone now
    oslocks.end_hold(process.lock_fd)


def test_a_kill_on_windows_ends_the_process_tree_with_taskkill(windows, monkeypatch):
    calls = []
    monkeypatch.setattr(launch, "_started_by", {})
    monkeypatch.setattr(launch.subprocess, "run", lambda command, **options: calls.append(command))
    launch.kill_group(4242)
    assert calls == [["taskkill", "/T", "/F", "/PID", "4242"]]


def test_a_launched_worker_is_waited_for_through_its_process_handle_on_windows(tmp_path, windows, monkeypatch):
    ends, killed = [], []
    monkeypatch.setattr(launch, "kill_group", killed.append)
    monkeypatch.setattr(launch, "record_end", lambda run_dir, code: ends.append((run_dir, code)))
    monkeypatch.setattr(launch, "remember_tree", lambda pid: None)
    process = types.SimpleNamespace(pid=4242, wait=lambda timeout=None: 1)
    launch.watch_launched(process, tmp_path, lambda: ends.append("on_end"))
    assert killed == [4242] and ends == [(tmp_path, 1), "on_end"]


class FakeChild:
    """A process a worker started, as psutil shows it: running until killed."""

    def __init__(self, pid: int) -> None:
        self.pid, self.killed = pid, False

    def is_running(self) -> bool:
        return not self.killed

    def kill(self) -> None:
        self.killed = True


def test_ranks_a_dead_windows_worker_left_are_killed_from_the_tree_seen_while_it_lived(tmp_path, windows,
                                                                                      monkeypatch):
    ranks, worker_alive, waits, calls = [FakeChild(7001), FakeChild(7002)], [True], [], []

    class FakePsutil(types.ModuleType):
        Error = RuntimeError

        def Process(self, pid):  # noqa: N802 - psutil's name
            if not worker_alive[0]:
                raise RuntimeError("no such process")  # psutil.NoSuchProcess is a psutil.Error
            return types.SimpleNamespace(children=lambda recursive: list(ranks) if recursive else [])

    def wait(timeout=None):
        waits.append(timeout)
        if len(waits) == 1:  # still training at the first look, dead at the second
            raise subprocess.TimeoutExpired("worker", timeout)
        worker_alive[0] = False
        return 1

    monkeypatch.setitem(sys.modules, "psutil", FakePsutil("psutil"))
    monkeypatch.setattr(launch, "_started_by", {})
    monkeypatch.setattr(launch.subprocess, "run", lambda command, **options: calls.append(command))
    monkeypatch.setattr(launch, "record_end", lambda run_dir, code: None)
    ranks[1].killed = True  # one rank ended on its own: it is not killed again
    launch.watch_launched(types.SimpleNamespace(pid=4242, wait=wait), tmp_path, lambda: None)
    assert waits[:2] == [launch.TREE_REFRESH_S, launch.TREE_REFRESH_S]  # refreshed while it lived
    assert calls == [["taskkill", "/T", "/F", "/PID", "4242"]]  # finds no tree under the dead worker...
    assert ranks[0].killed and launch._started_by == {}  # ...so the rank it left is killed from the snapshot


def test_a_windows_exit_code_is_never_taken_for_a_sigkill(tmp_path):
    assert launch.exit_cause(tmp_path, 1).code == "worker_stopped_unexpectedly"
    assert launch.exit_cause(tmp_path, launch.KILLED_RETURNCODE).code == "killed_out_of_memory"


def test_peak_memory_on_windows_comes_from_psutil_not_resource(windows, monkeypatch):
    import psutil
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "resource", None)
    memory = types.SimpleNamespace(peak_wset=300 * 2**20)
    monkeypatch.setattr(psutil, "Process", lambda pid: types.SimpleNamespace(memory_info=lambda: memory))
    assert device.peak_memory_mb() == 300.0


@pytest.mark.parametrize(("platform", "reported", "expected_mb"), [("darwin", 300 * 2**20, 300.0),
                                                                    ("linux", 300 * 2**10, 300.0)])
def test_peak_memory_reads_ru_maxrss_as_bytes_on_macos_and_kilobytes_on_linux(monkeypatch, platform, reported,
                                                                             expected_mb):
    import resource

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device.sys, "platform", platform)
    usage = types.SimpleNamespace(ru_maxrss=reported)
    monkeypatch.setattr(resource, "getrusage", lambda who: usage)
    assert device.peak_memory_mb() == expected_mb


def test_every_engine_module_imports_without_fcntl_and_resource():
    """The engine's own imports of `fcntl` and `resource` fail, as on Windows (torch and transformers, which
    need them on Linux, are left theirs); importing every engine module must still succeed."""
    script = """
import builtins, pkgutil
real_import = builtins.__import__
def windows_import(name, globals=None, *args, **options):  # the libraries below keep their own POSIX branches on Linux
    if name in ("fcntl", "resource") and (globals or {}).get("__name__", "").startswith("engine"):
        raise ImportError(f"No module named {name!r}")
    return real_import(name, globals, *args, **options)
builtins.__import__ = windows_import
import engine
names = [info.name for info in pkgutil.walk_packages(engine.__path__, "engine.")]
for name in names:
    __import__(name)
print(len(names))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 50
