"""The organiser's login when the studio is served beyond this computer: where it comes from, what is refused,
and failed attempts slowed down (a real server and a real HTTP client)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import app
from tests.conftest import free_port
from ui.login import LOCKOUT_SECONDS, MAX_FAILURES, WINDOW_SECONDS, Login

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A hand-moved clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_right_login_passes_and_a_wrong_one_does_not():
    login = Login("organiser", "s3cret")
    assert login("organiser", "s3cret") and not login("organiser", "wrong") and not login("rater", "s3cret")


def test_too_many_failures_lock_every_attempt_out_for_a_while():
    clock = Clock()
    login = Login("organiser", "s3cret", clock)
    for _ in range(MAX_FAILURES):
        assert not login("organiser", "guess")
    assert not login("organiser", "s3cret")  # locked out: even the right password waits
    clock.now += LOCKOUT_SECONDS + 1
    assert login("organiser", "s3cret")


def test_failures_spread_over_time_do_not_lock_out():
    clock = Clock()
    login = Login("organiser", "s3cret", clock)
    for _ in range(3 * MAX_FAILURES):
        assert not login("organiser", "typo")
        clock.now += WINDOW_SECONDS / (MAX_FAILURES - 1) + 1
    assert login("organiser", "s3cret")


def test_an_empty_password_is_no_login():
    with pytest.raises(ValueError):
        Login("organiser", "")


def test_the_login_comes_from_the_file_then_the_environment_then_the_command_line(tmp_path):
    secret = tmp_path / "login.txt"
    secret.write_text("organiser:from file:with colon\n", encoding="utf-8")
    assert app.organiser_login(str(secret), "a:b", "c:d") == ("organiser", "from file:with colon")
    assert app.organiser_login(None, "a:b", "c:d") == ("c", "d")
    assert app.organiser_login(None, "a:b", None) == ("a", "b")
    assert app.organiser_login(None, None, None) is None


@pytest.mark.parametrize("auth_file, auth, environment, code", [
    (None, "no-colon", None, "cli_login_form"),
    (None, "organiser:", None, "cli_login_empty"),
    (None, None, " :secret", "cli_login_empty"),
    ("missing.txt", None, None, "cli_login_unreadable"),
])
def test_a_login_that_cannot_be_used_is_refused_by_name(tmp_path, auth_file, auth, environment, code):
    with pytest.raises(ValueError) as caught:
        app.organiser_login(str(tmp_path / auth_file) if auth_file else None, auth, environment)
    assert caught.value.args[0] == code


def test_an_empty_password_in_the_environment_stops_the_studio_in_words():
    env = {**os.environ, "STUDIO_AUTH": "organiser:"}
    result = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0", "--lang", "zh"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "STUDIO_AUTH" in result.stderr and "请设置密码" in result.stderr
    assert "Traceback" not in result.stderr


def _post_login(base: str, user: str, password: str) -> int:
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        return urllib.request.urlopen(urllib.request.Request(f"{base}/login", data=data), timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_served_studio_asks_for_the_login_and_slows_down_guessing(tmp_path):
    secret = tmp_path / "login.txt"
    secret.write_text("organiser:s3cret\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs-dir", str(tmp_path / "runs"),
                                "--auth-file", str(secret)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, up = time.time() + 120, False
        while time.time() < deadline and not up:
            try:
                up = urllib.request.urlopen(f"{base}/", timeout=5).status == 200
            except OSError:
                time.sleep(1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/config", timeout=10)  # nothing of the studio before the login
        assert refused.value.code == 401
        assert _post_login(base, "organiser", "s3cret") == 200
        assert all(_post_login(base, "organiser", "guess") != 200 for _ in range(MAX_FAILURES))
        assert _post_login(base, "organiser", "s3cret") != 200  # locked out for a while
    finally:
        process.terminate()
        process.wait(timeout=30)
