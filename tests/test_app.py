"""`python app.py` serves the studio and its rater portal on 127.0.0.1, refuses to expose them without a password
(on a network address, or for a proxy's or tunnel's name), never opens a share link, and refuses serving options it
cannot use, in words."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import app
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_refuses_network_exposure_without_auth():
    result = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)  # no terminal: no prompt
    assert result.returncode == 2
    assert "--auth" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags, words", [
    (["--public-url", "https://rate.example.org"], "--public-url names rate.example.org"),
    (["--allowed-host", "localhost", "--allowed-host", "*.example.org"], "--allowed-host names *.example.org"),
    (["--public-url", "http://localhost:7860", "--allowed-host", "10.0.0.5"], "--allowed-host names 10.0.0.5"),
    (["--lang", "zh", "--allowed-host", "studio.lan"], "--allowed-host 指定了 studio.lan"),
])
def test_a_proxy_or_tunnel_name_counts_as_exposure_and_needs_the_login(capsys, monkeypatch, flags, words):
    monkeypatch.delenv("STUDIO_AUTH", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no terminal: no prompt
    monkeypatch.setattr(app, "serve_web", lambda *args: pytest.fail("served without the organiser's login"))
    with pytest.raises(SystemExit) as stopped:
        app.main(flags)
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and words in error and "--auth" in error and "Traceback" not in error


def test_a_proxy_name_with_the_login_given_or_typed_serves_behind_it(monkeypatch):
    served = []
    monkeypatch.setattr(app, "serve_web", lambda args, login, options: served.append(login) or 0)
    monkeypatch.setenv("STUDIO_AUTH", "organiser:s3cret")
    assert app.main(["--public-url", "https://rate.example.org"]) == 0
    monkeypatch.delenv("STUDIO_AUTH")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "typed")
    monkeypatch.setattr(app.getpass, "getpass", lambda prompt: "pa55")
    assert app.main(["--allowed-host", "studio.lan"]) == 0
    assert [login("organiser", "s3cret") for login in served] == [True, False]
    assert served[1]("typed", "pa55")


def test_only_names_of_this_computer_leave_the_studio_unexposed():
    def exposure(*flags):
        args = app.web_parser(("train",), ("en", "zh"), "en").parse_args(list(flags))
        return app.exposure(args, app.serving_options(args))

    assert exposure() is None
    assert exposure("--public-url", "http://127.0.0.1:7860/", "--allowed-host", "LOCALHOST", "--allowed-host",
                    "::1") is None
    assert exposure("--host", "0.0.0.0", "--public-url", "https://rate.example.org") == (
        "cli_exposed_needs_login", {"host": "0.0.0.0"})
    assert exposure("--public-url", "https://Rate.Example.org:8443") == (
        "cli_reached_needs_login", {"flag": "--public-url", "host": "rate.example.org"})


def test_serves_the_app_on_loopback(tmp_path):
    port = free_port()
    env = {**os.environ, "GRADIO_SHARE": "true"}  # gradio's own switch for a public link: never followed here
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs-dir", str(tmp_path),
                                "--lang", "en"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        deadline, page = time.time() + 120, ""
        while time.time() < deadline and not page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
        assert "gradio" in page.lower()
        config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read().decode()
        assert "customer_service.jsonl" in config  # the bundled sample is preselected
        assert "SmolLM2-135M-Instruct" in config  # and so is the bundled model
        portal = urllib.request.urlopen(f"http://127.0.0.1:{port}/rate?invite=x", timeout=5)
        assert portal.status == 200 and portal.url.endswith("/rate/?invite=x")  # the raters' door, same server
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/rate" in output and "Raters' page" in output
    assert "gradio.live" not in output and "share" not in output.lower() and "Traceback" not in output


@pytest.mark.parametrize("flags, words", [
    (["--max-upload-mb", "0"], "--max-upload-mb 0 should be a whole number"),
    (["--public-url", "ftp://studio.lan"], "--public-url ftp://studio.lan should be a web address"),
    (["--public-url", "http://studio.lan/?x=1"], "--public-url http://studio.lan/?x=1 should be a web address"),
    (["--allowed-host", "studio.lan:7860"], "--allowed-host studio.lan:7860 is not a name or address"),
    (["--allowed-host", "ok.lan", "--allowed-host", "http://x"], "--allowed-host http://x is not"),
    (["--lang", "zh", "--max-upload-mb", "-5"], "应是不小于 1 的整数"),
])
def test_serving_options_that_cannot_be_used_are_refused_in_words(capsys, flags, words):
    with pytest.raises(SystemExit) as stopped:
        app.main(flags)
    assert stopped.value.code == 2 and words in capsys.readouterr().err


def test_the_serving_options_reach_the_server():
    args = app.web_parser(("train",), ("en", "zh"), "en").parse_args(
        ["--allowed-host", "Studio.LAN", "--allowed-host", "*.example.org", "--public-url", "http://10.0.0.5:7860/",
         "--max-upload-mb", "3"])
    assert app.serving_options(args) == {"extra_hosts": ["studio.lan", "*.example.org"],
                                         "max_file_size": 3 * 1024 * 1024, "public_url": "http://10.0.0.5:7860"}
    defaults = app.serving_options(app.web_parser(("train",), ("en", "zh"), "en").parse_args([]))
    assert defaults == {"extra_hosts": [], "max_file_size": 200 * 1024 * 1024, "public_url": None}


def test_a_taken_port_is_said_in_words(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "app.py", "--port", str(port), "--runs-dir", str(tmp_path),
                                 "--lang", "zh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and f"端口 {port} 已被占用" in result.stderr and "Traceback" not in result.stderr
