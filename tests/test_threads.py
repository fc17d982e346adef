"""Torch work on its own short-lived thread: results, errors, and no OpenMP team left behind."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.system.threads import on_own_thread


def test_returns_the_result_from_another_thread():
    caller = threading.get_ident()
    assert on_own_thread(lambda x, y=1: (x + y, threading.get_ident()))(2, y=3)[0] == 5
    assert on_own_thread(threading.get_ident)() != caller


def test_raises_the_error_in_the_caller():
    def fail():
        raise ValueError("bad row 3")

    with pytest.raises(ValueError, match="bad row 3"):
        on_own_thread(fail)()


CHECK_IN_A_FRESH_PROCESS = """
import os, threading, time
import torch
from engine.system.threads import on_own_thread

def os_threads():
    return len(os.listdir("/proc/self/task"))

if torch.get_num_threads() < 2:
    print("SKIP")
    raise SystemExit
matrix = torch.randn(1500, 1500)
results = []

def multiply_in_a_long_lived_thread():
    before = os_threads()
    on_own_thread(lambda: matrix @ matrix)()
    deadline = time.monotonic() + 5
    while os_threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    results.append(os_threads() - before)

caller = threading.Thread(target=multiply_in_a_long_lived_thread)
caller.start()
caller.join()
print("LEFT", results[0])
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_a_parallel_torch_op_leaves_no_worker_threads_behind():
    """A long-lived caller (like a web worker thread) that ran torch itself would keep an OpenMP team
    alive and slow a later training thread down; through on_own_thread the team ends with the call.
    Counted in a fresh process, so threads that other tests start or end cannot blur the count."""
    pytest.importorskip("torch")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", CHECK_IN_A_FRESH_PROCESS], cwd=root, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "SKIP":
        pytest.skip("one CPU thread: OpenMP starts no workers")
    assert result.stdout.split() == ["LEFT", "0"]
