"""`python app.py` serves the studio and its rater portal on 127.0.0.1, refuses to expose them without a password,
never opens a share link, and refuses serving options it cannot use, in words."""
from __future__ import annotations

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
