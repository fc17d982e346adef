"""The accelerator: what is present, and the one lock that training and generation share."""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
from pathlib import Path

from engine.system import oslocks

PROBE_SECONDS = 0.5  # how long an exclusive lock is retried past another process's momentary `locked()` test


class DeviceLock:
    """One GPU job at a time: a thread lock, and with `path` an OS file lock on that file too (`oslocks`:
    flock, or msvcrt's on Windows), so that other processes (the CLI, a second app, a training worker) are kept
    out as well. The file names its holder (a run id, or "chat") for the `busy` message. A run hands the locked
    file `fd` over to its worker process and closes its own copy: the lock then lives exactly as long as the
    worker, and is freed even when the worker is killed."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._threads = threading.Lock()
        self.fd: int | None = None  # the locked file while this process holds it

    def acquire(self, holder: str = "chat") -> bool:
        """Take the lock for `holder` without waiting; False when a thread or a process holds it."""
        if not self._threads.acquire(blocking=False):
            return False
        if self.path is None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = oslocks.open_lock_file(self.path)
        except OSError:
            self._threads.release()
            raise
        if not _take_soon(fd):
            oslocks.close_lock_file(fd)
            self._threads.release()
            return False
        self.fd = fd
        self.label(holder)
        return True

    def label(self, holder: str) -> None:
        """Name the holder in the lock file (while this process holds the lock)."""
        if self.fd is not None:
            oslocks.write_holder(self.fd, holder)

    def release(self) -> None:
        """Give the lock up: the file lock too, unless a worker process still holds the file it was handed."""
        fd, self.fd = self.fd, None
        if fd is not None:
            oslocks.close_lock_file(fd)
        self._threads.release()

    def holder(self) -> str:
        """Who holds the lock, as its file says ("-" when it cannot be read)."""
        if self.path is None:
            return "-"
        try:
            return self.path.read_text(encoding="utf-8").strip() or "-"
        except OSError:
            return "-"

    def locked(self) -> bool:
        """Whether a thread of this process or any process holds the lock now (`oslocks.is_held`)."""
        if self._threads.locked() or self.path is None:
            return self._threads.locked()
        try:
            fd = oslocks.open_lock_file(self.path, writable=False)
        except FileNotFoundError:
            return False
        try:
            return oslocks.is_held(fd)
        finally:
            oslocks.close_lock_file(fd)


def _take_soon(fd: int) -> bool:
    """Lock `fd` exclusively, retrying for PROBE_SECONDS: a `locked()` test elsewhere holds a lock for an
    instant, which must not make a free device look busy; False when it is really held."""
    deadline = time.monotonic() + PROBE_SECONDS
    while not oslocks.take(fd):
        if time.monotonic() >= deadline:
            return False
        time.sleep(oslocks.RETRY_S)
    return True


DEVICE_LOCK = DeviceLock()  # the process's own lock, for a ChatModel used without a Studio


def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def bf16_supported() -> bool:
    """Whether a CUDA GPU is present and supports bfloat16."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def memory_in_use_mb() -> float:
    """GPU memory allocated by torch where CUDA is present, else this process's resident memory."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.memory_allocated() / 2**20
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def peak_memory_mb() -> float:
    """The most memory this process has held so far: CUDA memory reserved by torch's allocator (what the card
    must have free, fragmentation included) where CUDA is present, else the peak resident memory."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_reserved() / 2**20
    if oslocks.WINDOWS:  # no `resource` module there; psutil (which accelerate requires) reports the peak
        import psutil

        return psutil.Process(os.getpid()).memory_info().peak_wset / 2**20
    import resource

    unit = 2**20 if sys.platform == "darwin" else 2**10  # macOS reports bytes, Linux kilobytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit


def release_memory() -> None:
    """Give cached accelerator memory back after a run or a failure (nothing to give when torch was never
    loaded: a fake job's worker does not import it just to find that out)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is a torch or Python out-of-memory error, or any error whose message says "out of memory"."""
    import torch

    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()
