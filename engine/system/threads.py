"""Run torch work on a short-lived thread, so that no long-lived thread keeps an OpenMP team.

On CPU, torch parallelises with OpenMP (libgomp). Every thread that runs a parallel region becomes the
master of its own team of worker threads, and the team lives as long as that thread. When the workers
of all teams outnumber the CPU cores, libgomp stops spin-waiting and every parallel region pays for
waking its workers: a training step on the bundled model then takes about 1.5x as long (measured on
2 cores: 11.5 s against 7.5 s for one forward and backward pass). The web server's worker threads live
long, so chat, study generation and metrics run here instead and their team ends with the thread.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

Result = TypeVar("Result")


def on_own_thread(function: Callable[..., Result]) -> Callable[..., Result]:
    """Decorator: each call runs `function` on a fresh thread, waits for it, and returns its result
    or raises its exception in the caller."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Result:
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = function(*args, **kwargs)
            except BaseException as exc:  # re-raised in the caller below
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=f"torch-{function.__name__}", daemon=True)
        worker.start()
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return call
