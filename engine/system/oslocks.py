"""The operating system's side of the device lock's file: `flock` on POSIX, `msvcrt.locking` on Windows.

POSIX: an flock belongs to the open file, so a runner hands its locked descriptor to the worker process
(`pass_fds`) and the lock lives exactly as long as the worker.

Windows has no inheritable whole-file lock: `msvcrt.locking` locks bytes of one open handle, and a locked byte
blocks reads and writes through other handles. The lock is therefore two bytes far past the holder text (which
stays readable): MAIN and HANDOVER; a holder holds both, and the lock is free only when both are. A runner
hands the lock over without a gap: it unlocks HANDOVER only (keeping MAIN, so nobody else can start taking the
lock), starts the worker, which takes HANDOVER by the file's path, and waits until the worker holds it before it
lets MAIN go. The system frees a process's locked bytes when it ends, killed or not.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

WINDOWS = os.name == "nt"  # which of the two implementations below is used (tests flip it)
MAIN_BYTE = 1 << 20  # the Windows lock's bytes: past any holder text, so reading that text is never blocked
HANDOVER_BYTE = MAIN_BYTE + 1
RETRY_S = 0.02  # between tries of a lock held for an instant (another process's `is_held` test)

_open_files: dict[int, Path] = {}  # the lock files this process has open, by descriptor


def open_lock_file(path: Path, writable: bool = True) -> int:
    """Open (creating when `writable`) the lock file at `path`; its descriptor, remembered with the path."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if writable else os.open(path, os.O_RDONLY)
    _open_files[fd] = Path(path)
    return fd


def close_lock_file(fd: int) -> None:
    """Close a descriptor `open_lock_file` gave (on Windows, its locked bytes are unlocked first)."""
    if WINDOWS:
        for offset in (MAIN_BYTE, HANDOVER_BYTE):
            _unlock_byte(fd, offset)
    _open_files.pop(fd, None)
    os.close(fd)


def lock_file_path(fd: int) -> Path:
    """The path of the lock file open as `fd` in this process."""
    return _open_files[fd]


def take(fd: int) -> bool:
    """Lock the file `fd` exclusively without waiting; False when another holds it."""
    if not WINDOWS:
        return _flock(fd, _fcntl().LOCK_EX)
    if not _lock_byte(fd, MAIN_BYTE):
        return False
    if _lock_byte(fd, HANDOVER_BYTE):
        return True
    _unlock_byte(fd, MAIN_BYTE)
    return False


def is_held(fd: int) -> bool:
    """Whether another open file holds the lock now: a shared lock tried on POSIX (so a concurrent `take` is
    not refused because of the test), both bytes taken and given back at once on Windows."""
    if not WINDOWS:
        return not _flock(fd, _fcntl().LOCK_SH)
    if not take(fd):
        return True
    for offset in (MAIN_BYTE, HANDOVER_BYTE):
        _unlock_byte(fd, offset)
    return False


def end_hold(fd: int) -> None:
    """Unlock and close the lock file `fd` at a worker's end; on POSIX for every copy of it first (a forked
    helper may hold one)."""
    if not WINDOWS:
        _fcntl().flock(fd, _fcntl().LOCK_UN)
    close_lock_file(fd)


def write_holder(fd: int, holder: str) -> None:
    """Replace the holder text at the start of the lock file `fd` (Windows has no `os.pwrite`)."""
    os.ftruncate(fd, 0)
    if WINDOWS:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, holder.encode("utf-8"))
    else:
        os.pwrite(fd, holder.encode("utf-8"), 0)


def start_handover(fd: int) -> None:
    """Windows, before the worker starts: give HANDOVER up for it, keeping MAIN (nothing to do on POSIX)."""
    if WINDOWS:
        _unlock_byte(fd, HANDOVER_BYTE)


def take_handover(path: Path, timeout: float) -> int | None:
    """Windows, in the worker: take the HANDOVER byte of the lock file at `path`, retrying for `timeout`
    seconds (the runner's and others' tests hold it for an instant); the descriptor, None when not taken."""
    fd = open_lock_file(path)
    deadline = time.monotonic() + timeout
    while not _lock_byte(fd, HANDOVER_BYTE):
        if time.monotonic() >= deadline:
            close_lock_file(fd)
            return None
        time.sleep(RETRY_S)
    return fd


def handover_taken(path: Path) -> bool:
    """Windows, in the runner: whether another open file holds the HANDOVER byte of the lock file at `path`."""
    fd = open_lock_file(path, writable=False)
    try:
        if not _lock_byte(fd, HANDOVER_BYTE):
            return True
        _unlock_byte(fd, HANDOVER_BYTE)
        return False
    finally:
        _open_files.pop(fd, None)
        os.close(fd)


def _fcntl():
    import fcntl

    return fcntl


def _msvcrt():
    import msvcrt

    return msvcrt


def _flock(fd: int, kind: int) -> bool:
    """flock `fd` (`kind`: LOCK_EX or LOCK_SH) without waiting; False when another holds it."""
    try:
        _fcntl().flock(fd, kind | _fcntl().LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_byte(fd: int, offset: int) -> bool:
    """Lock byte `offset` of `fd` without waiting (Windows); False when another handle holds it."""
    os.lseek(fd, offset, os.SEEK_SET)
    try:
        _msvcrt().locking(fd, _msvcrt().LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock_byte(fd: int, offset: int) -> None:
    """Unlock byte `offset` of `fd` (Windows); a byte this handle does not hold is left as it is."""
    os.lseek(fd, offset, os.SEEK_SET)
    try:
        _msvcrt().locking(fd, _msvcrt().LK_UNLCK, 1)
    except OSError:
        pass
