"""Votes survive a crash: `python app.py` is served for real, a rater votes through the portal over HTTP, and the
process is killed (SIGKILL, no clean-up) in the middle of a further vote; every vote the portal acknowledged is in
the SQLite file afterwards, and the file is intact."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gradio_client import Client

from engine.study.store import StudyStore
from tests.conftest import free_port
from ui.study_organise import MAX_CRITERIA

ROOT = Path(__file__).resolve().parent.parent
NO_SCORES = [3] * (2 * MAX_CRITERIA)
ACKNOWLEDGED = 4  # votes waited for before the kill


def prepared_study(work: Path, questions: int = 6) -> tuple[StudyStore, int, str]:
    """An open study with its answers in `work`/data/studies.db (where app.py run in `work` looks) and one rater:
    (the store, the study id, the rater's token)."""
    store = StudyStore(work / "data" / "studies.db")
    study_id = store.create_study("Crash", [{"prompt": f"Where is parcel #{i}?"} for i in range(questions)],
                                  "runs/r1", {}, state="open")
    for question in store.questions(study_id):
        store.store_answers(question["id"], f"base: {question['prompt']}", f"expert: {question['prompt']}")
    return store, study_id, store.invite_rater(study_id, "Dr. Li").token


def wait_until_served(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        try:
            if urllib.request.urlopen(url, timeout=5).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} was not served (exit code {process.poll()})")


def test_every_acknowledged_vote_is_stored_when_the_server_is_killed(tmp_path):
    store, study_id, token = prepared_study(tmp_path)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--runs-dir", "runs",
                                "--lang", "en"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_until_served(f"http://127.0.0.1:{port}/rate/config", process)
        client = Client(f"http://127.0.0.1:{port}/rate/", verbose=False)
        client.predict("en", token, api_name="/rate_begin")
        for number in range(ACKNOWLEDGED):
            shown = client.predict("en", "A" if number % 2 else "B", f"vote {number}", *NO_SCORES,
                                   api_name="/rate_vote")
            assert any("Saved ✓" in str(part) for part in shown), shown  # acknowledged to the rater
        client.submit("en", "tie", "the vote under way", *NO_SCORES, api_name="/rate_vote")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    comments = [vote["comment"] for vote in store.results(study_id)]
    assert [c for c in comments if c.startswith("vote ")] == [f"vote {n}" for n in range(ACKNOWLEDGED)]
    assert len(comments) in (ACKNOWLEDGED, ACKNOWLEDGED + 1)  # the vote under way: stored whole or not at all
