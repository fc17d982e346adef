"""Shared fixtures: small datasets made from the bundled sample, a fake training job, a served app, Chromium."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.presets import SAMPLE_DATASET
from engine.training.events import LogEvent, RunState, StatusEvent

HELDOUT = SAMPLE_DATASET.with_name("customer_service_heldout.jsonl")
LANES = ("all", "model", "beside")  # `--lane`: every test, the real-model and browser ones, the others
EN_GREETING = "Thanks for reaching out to Orchard Lane!"


def sample_rows(path: Path = SAMPLE_DATASET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pytest_addoption(parser) -> None:
    parser.addoption("--lane", choices=LANES, default="all",
                     help="model: only the tests that train or generate with the real model (each uses both cores) "
                          "or drive Chromium; beside: only the others, which may run in parallel (-n 2)")


def in_model_lane(item) -> bool:
    """Whether a test needs the machine to itself: the real model and trainer, the session's trained run, Chromium."""
    return any(item.get_closest_marker(mark) is not None for mark in ("slow", "browser")) or \
        "trained_run" in item.fixturenames


def pytest_collection_modifyitems(config, items: list) -> None:
    """Keep the tests of the `--lane` asked for; under `-n` (pytest-xdist, `--dist loadgroup`) a module's tests stay
    in one process, so its fixtures are built once."""
    lane = config.getoption("lane")
    kept = [item for item in items if lane == "all" or in_model_lane(item) == (lane == "model")]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    for item in items:
        item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@pytest.fixture
def english_dataset(tmp_path) -> Path:
    """The English half of the bundled sample (short rows: cheap to train on a CPU)."""
    path = tmp_path / "english.jsonl"
    rows = [r for r in sample_rows() if r["output"].startswith(EN_GREETING)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


class FakeJob:
    """Stands in for SFTJob: logs a falling loss for a few steps, writes a checkpoint per step,
    honours stop, resumes after a checkpoint's step, writes an adapter."""

    def __init__(self, config, examples, run_dir, log, stop_requested, steps: int = 5, delay: float = 0.05):
        self.log, self.stop_requested, self.steps, self.delay = log, stop_requested, steps, delay
        self.run_dir = Path(run_dir)

    def train(self, resume_from: str | None = None) -> None:
        first = int(resume_from.rsplit("-", 1)[-1]) + 1 if resume_from else 1
        self.log.append(StatusEvent(RunState.TRAINING, max_steps=self.steps))
        for step in range(first, self.steps + 1):
            if self.stop_requested.is_set():
                return
            time.sleep(self.delay)
            self.log.append(LogEvent(step, epoch=step / self.steps, max_steps=self.steps, loss=3.0 / step))
            checkpoint = self.run_dir / "checkpoints" / f"checkpoint-{step}"
            checkpoint.mkdir(parents=True, exist_ok=True)
            (checkpoint / "trainer_state.json").write_text("{}", encoding="utf-8")
            (checkpoint / "adapter_config.json").write_text("{}", encoding="utf-8")

    def save(self, adapter_dir: Path) -> None:
        adapter_dir.mkdir(parents=True, exist_ok=True)
        (adapter_dir / "adapter_config.json").write_text("{}", encoding="utf-8")


class ExitAtStep:
    """An EventLog stand-in that ends the process with exit code `code` once step `step` is logged (a worker
    dying on its own, as a crash in a CUDA kernel would end it)."""

    def __init__(self, log, step: int, code: int) -> None:
        self.log, self.step, self.code = log, step, code

    def append(self, event):
        stamped = self.log.append(event)
        if getattr(event, "step", None) == self.step:
            print(f"fake worker: failing on purpose at step {self.step}", file=sys.stderr, flush=True)
            os._exit(self.code)
        return stamped


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A real run of the bundled model, trained once per test session (4 steps on the English sample, a complete
    checkpoint at step 2, DONE): read it, never write into it (copy it with `run_copy`)."""
    from engine.studio import Studio

    root = tmp_path_factory.mktemp("trained") / "runs"
    rows = [row for row in sample_rows() if row["output"].startswith(EN_GREETING)]
    dataset = root.parent / "english.jsonl"
    dataset.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    studio = Studio(root, data_root=root.parent / "data")
    config = studio.default_config().replace(dataset_path=str(dataset), max_steps=4, save_steps=2, logging_steps=1,
                                             per_device_train_batch_size=2, max_length=64, eval_split=0.0,
                                             eval_strategy="no")
    run_id = studio.start(config)
    assert studio.runner.wait(900) is RunState.DONE, (root / run_id / "train.log").read_text(encoding="utf-8")[-3000:]
    return root / run_id


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A copy of the session's trained run in `tmp_path / "runs"`, to export from or write into."""
    copy = tmp_path / "runs" / trained_run.name
    shutil.copytree(trained_run, copy)
    return copy


def worker_fake_job(config, examples, run_dir, log, stop_requested):
    """`--job tests.conftest:worker_fake_job`: a FakeJob trained by a real worker process, shaped by the
    environment variable FAKE_JOB (e.g. "steps=200 delay=0.05 exit_at=3 code=7 ignore_stop=1 linger=5", the last
    keeping the process alive that many seconds after the run has ended, as a real worker's teardown can)."""
    shape = dict(item.split("=", 1) for item in os.environ.get("FAKE_JOB", "").split())
    if "linger" in shape:
        atexit.register(time.sleep, float(shape["linger"]))
    if "exit_at" in shape:
        log = ExitAtStep(log, int(shape["exit_at"]), int(shape.get("code", "1")))
    if shape.get("ignore_stop"):
        stop_requested = threading.Event()  # never set: only the runner's kill ends this job
    return FakeJob(config, examples, run_dir, log, stop_requested, steps=int(shape.get("steps", "5")),
                   delay=float(shape.get("delay", "0.05")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve():
    """Serve a studio and its rater portal on one server on a free local port, as `python app.py` does; yields a
    function (studio, lang, login=None) returning (url, app): the studio's root URL (ending in "/"; the portal is at
    url + "rate") and the FastAPI app. With `login` (a ui.login.Login) the studio asks for the organiser's login."""
    servers = []

    def launch(studio, lang: str = "en", login=None):
        from ui.server import ServerThread, build_server

        app = build_server(studio, lang, login=login)
        port = free_port()
        servers.append(ServerThread(app, port).start())
        return f"http://127.0.0.1:{port}/", app

    yield launch
    for server in servers:
        server.stop()


@pytest.fixture
def browser():
    """Debian's headless Chromium (skips when it is not installed); `browser.new_page(viewport=...)` per user."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A desktop-sized page (1280×1000) in headless Chromium."""
    return browser.new_page(viewport={"width": 1280, "height": 1000})


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where a browser test saves its screenshots to look at: $STUDIO_SCREENSHOTS_DIR when set, else tmp_path."""
    folder = Path(os.environ.get("STUDIO_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
