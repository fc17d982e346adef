"""Torch work on its own short-lived thread: results, errors, and no OpenMP team left behind."""
import os
import threading
import time

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


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_a_parallel_torch_op_leaves_no_worker_threads_behind():
    """A long-lived caller (like a web worker thread) that ran torch itself would keep an OpenMP team
    alive and slow a later training thread down; through on_own_thread the team ends with the call."""
    torch = pytest.importorskip("torch")
    if torch.get_num_threads() < 2:
        pytest.skip("one CPU thread: OpenMP starts no workers")
    matrix = torch.randn(1500, 1500)

    def multiply_in_a_long_lived_thread(results):
        before = _os_threads()
        on_own_thread(lambda: matrix @ matrix)()
        deadline = time.monotonic() + 5
        while _os_threads() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        results.append(_os_threads() - before)

    results = []
    caller = threading.Thread(target=multiply_in_a_long_lived_thread, args=(results,))
    caller.start()
    caller.join()
    assert results == [0]
