"""`python app.py` serves the studio on 127.0.0.1 and refuses to expose it without a password."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_refuses_network_exposure_without_auth():
    result = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)  # no terminal: no prompt
    assert result.returncode == 2
    assert "--auth" in result.stderr and "Traceback" not in result.stderr


def test_serves_the_app_on_loopback(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs-dir", str(tmp_path)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    finally:
        process.terminate()
        process.wait(timeout=30)
