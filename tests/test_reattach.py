"""Training outlives the app, for real: `python app.py` served in a process of its own starts a run of the bundled
model and is killed (SIGKILL) mid-run; the worker goes on, a restarted app shows the whole curve with no sequence
gap, a `python app.py train` meanwhile is refused as busy naming the run, and the app stops the run, whose adapter
PEFT loads. A run started with `python app.py train` shows live in a browser on the Training tab, which stops it;
a second CLI run meanwhile is refused as busy too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client

from engine.training.events import RunState
from engine.training.worker import live_worker
from tests.conftest import free_port
from tests.test_cli import app_env
from tests.test_portal_kill import wait_until_served

ROOT = Path(__file__).resolve().parent.parent
WAIT = 600  # seconds; a guard against hangs on a slow machine, not a timing assertion
LONG_RUN = {"max_steps": 300, "save_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2,
            "max_length": 64, "eval_split": 0.0, "eval_strategy": "no"}


def events(run_dir: Path) -> list[dict]:
    """The run's events as written so far (a line being written is left out)."""
    path = run_dir / "events.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return found


def logged_steps(run_dir: Path) -> list[int]:
    return [e["data"]["step"] for e in events(run_dir) if e["kind"] == "log" and e["data"].get("loss") is not None]


def final_state(run_dir: Path) -> str | None:
    states = [e["data"]["state"] for e in events(run_dir) if e["kind"] == "status"]
    return states[-1] if states and states[-1] in ("DONE", "STOPPED", "FAILED", "INTERRUPTED") else None


def wait_until(condition, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.2)


def serve_app(work: Path, port: int) -> subprocess.Popen:
    """`python app.py` serving the studio with its runs in `work`/runs, as a user starts it in `work`."""
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--runs-dir", "runs",
                                "--lang", "en"], cwd=work, env=app_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_served(f"http://127.0.0.1:{port}/config", process)
    return process


def end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def the_run(runs: Path) -> Path:
    found = [path for path in runs.iterdir() if path.is_dir()]
    assert len(found) == 1, found
    return found[0]


def dataset_in(work: Path, english_dataset: Path) -> Path:
    """The English sample copied into `work`/data, where the web studio may open it."""
    path = work / "data" / "english.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(english_dataset.read_bytes())
    return path


def assert_peft_loads(adapter: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.config import TrainConfig
    from engine.models import loader

    config = TrainConfig.from_yaml(adapter.parent / "config.yaml")
    base = AutoModelForCausalLM.from_pretrained(loader.resolve_model(config.model_name_or_path))
    assert PeftModel.from_pretrained(base, str(adapter)).peft_config["default"].r == config.lora_r


@pytest.mark.slow
def test_the_app_killed_mid_run_leaves_training_going_and_a_restarted_app_follows_and_stops_it(tmp_path,
                                                                                               english_dataset):
    dataset, first_port = dataset_in(tmp_path, english_dataset), free_port()
    first = serve_app(tmp_path, first_port)
    try:
        Client(f"http://127.0.0.1:{first_port}/", verbose=False).predict(
            dataset_path=str(dataset), **LONG_RUN, api_name="/start_training")
        run_dir = the_run(tmp_path / "runs")
        wait_until(lambda: len(logged_steps(run_dir)) >= 3, "three logged steps")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        end(first)
    worker = live_worker(run_dir)
    assert worker is not None and worker != first.pid  # the worker was not the app's to take down
    before = len(logged_steps(run_dir))
    wait_until(lambda: len(logged_steps(run_dir)) > before, "a step after the app died")

    second_port = free_port()
    second = serve_app(tmp_path, second_port)
    try:
        client = Client(f"http://127.0.0.1:{second_port}/", verbose=False)
        status, _progress, _diagnosis, plot, _metrics, _timer = client.predict("en", api_name="/attach")
        assert run_dir.name in status and "Training" in status
        plotted = list(json.loads(plot["plot"])["data"][0]["x"])
        assert plotted == list(range(1, len(plotted) + 1)) and len(plotted) > before  # the whole curve
        sequence = [e["seq"] for e in events(run_dir)]
        assert sequence == list(range(len(sequence)))  # no gap: one writer, before and after the app died
        busy = subprocess.run([sys.executable, str(ROOT / "app.py"), "train", "--preset", "smoke-test"], cwd=tmp_path,
                              env=app_env(), capture_output=True, text=True, timeout=WAIT)  # the same runs/ folder
        assert busy.returncode == 1 and run_dir.name in busy.stderr and "Traceback" not in busy.stderr
        client.predict("en", api_name="/stop_training")
        wait_until(lambda: final_state(run_dir) is not None, "the run's end")
    finally:
        end(second)
    assert final_state(run_dir) == RunState.STOPPED.value
    wait_until(lambda: live_worker(run_dir) is None, "the worker's exit", timeout=60)
    assert_peft_loads(run_dir / "adapter")


@pytest.mark.slow
@pytest.mark.browser
def test_a_cli_run_shows_live_on_the_training_tab_which_stops_it_and_a_second_cli_run_is_busy(
        tmp_path, english_dataset, serve, page):
    from engine.studio import Studio

    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    url, _app = serve(studio)
    page.goto(url)
    page.get_by_role("tab", name="3. Training").click()
    settings = [f"{key}={value}" for key, value in LONG_RUN.items()]
    cli = subprocess.Popen([sys.executable, "app.py", "train", "--dataset", str(english_dataset), "--runs-dir",
                            str(tmp_path / "runs"), *sum((["--set", item] for item in settings), [])],
                           cwd=ROOT, env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: (tmp_path / "runs").is_dir() and any(p.is_dir() for p in (tmp_path / "runs").iterdir()),
                   "the CLI's run folder")
        run_dir = the_run(tmp_path / "runs")
        page.locator("#run-status").get_by_text(run_dir.name).wait_for(timeout=WAIT * 1000)  # no reload
        wait_until(lambda: len(logged_steps(run_dir)) >= 2, "two logged steps")
        page.locator("#run-progress").get_by_text("/300").wait_for(timeout=WAIT * 1000)  # its progress, live

        second = subprocess.run([sys.executable, "app.py", "train", "--preset", "smoke-test", "--runs-dir",
                                 str(tmp_path / "runs")], cwd=ROOT, env=app_env(), capture_output=True, text=True,
                                timeout=WAIT)
        assert second.returncode == 1 and run_dir.name in second.stderr and "Traceback" not in second.stderr
        assert len([p for p in (tmp_path / "runs").iterdir() if p.is_dir()]) == 1

        page.locator("#stop").click()
        out, _ = cli.communicate(timeout=WAIT)
    finally:
        if cli.poll() is None:
            os.kill(cli.pid, signal.SIGKILL)
    assert cli.returncode == 130, out[-3000:]  # the CLI's contract: stopped, adapter saved
    assert final_state(run_dir) == RunState.STOPPED.value
    page.locator("#run-status").get_by_text("Stopped").wait_for(timeout=60_000)
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
