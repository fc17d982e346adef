"""The organiser's login for a studio served beyond this computer: one user and password, compared in constant
time, with failed attempts slowed down so a password cannot be guessed at web speed."""
from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from typing import Callable

MAX_FAILURES = 5          # failed attempts within WINDOW_SECONDS before logins are refused for a while
WINDOW_SECONDS = 60.0
LOCKOUT_SECONDS = 60.0


class Login:
    """Gradio's `auth` callable: True for the right user and password, unless too many attempts failed lately
    (then every attempt is refused until the lockout ends, the right one included)."""

    def __init__(self, user: str, password: str, clock: Callable[[], float] = time.monotonic) -> None:
        if not user or not password:
            raise ValueError("a login needs a user name and a non-empty password")
        self._user, self._password, self._clock = user, password, clock
        self._failures: deque[float] = deque()
        self._locked_until = 0.0
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        """Whether this attempt logs in."""
        now = self._clock()
        with self._lock:
            if now < self._locked_until:
                return False
            right = hmac.compare_digest(f"{user}\0{password}".encode(), f"{self._user}\0{self._password}".encode())
            if right:
                self._failures.clear()
                return True
            self._failures.append(now)
            while self._failures and self._failures[0] < now - WINDOW_SECONDS:
                self._failures.popleft()
            if len(self._failures) >= MAX_FAILURES:
                self._locked_until, self._failures = now + LOCKOUT_SECONDS, deque()
            return False
