"""Training in its own process, measured side by side in one run on the bundled model (CPU or GPU).

Three arms train the same tiny config (the sample set, a few steps, short rows), each in a fresh process,
alternated round by round (bare, worker, watched; then the other way round) so that drift of the machine's
speed cancels out:

- bare: TRL's SFTTrainer driven directly with the run's settings (the training bench's bare TRL arm: the
  trainer the exported `train_lora.py` uses; no studio runner, worker, event log or callback);
- worker: the same config through `Studio.start`: a worker process of its own, its events followed by
  byte offset, this process asking `is_live` once a second;
- watched: the worker arm with the app served and a headless Chromium page on the Training tab, polling
  every POLL_SECONDS as a user's browser does (its one `poll` tick), opened while the worker loads.

Each arm's speed is its steps per second after the first (warm-up) step, from the step times it logged.
Printed: each round's figures, the median over rounds, and the ratios worker / bare (goal >= 0.97) and
watched / worker (goal: under 3% slower). `python -m bench worker --steps 4 --rounds 1` for a quick look.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.models import loader
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2
MAX_LENGTH = 64
ARMS = ("bare", "worker", "watched")


def tiny_config(steps: int) -> TrainConfig:
    """`steps` timed steps after one warm-up step on the sample set: short rows, no evaluation, no checkpoint."""
    return TrainConfig(dataset_path=str(SAMPLE_DATASET), max_steps=steps + 1, per_device_train_batch_size=BATCH,
                       max_length=MAX_LENGTH, eval_split=0.0, eval_strategy="no", save_steps=100_000,
                       logging_steps=1, learning_rate=2e-4)


def steps_per_second(step_seconds: list[float]) -> float:
    """Steps per second over the timed steps (each step's seconds, the warm-up step left out)."""
    return len(step_seconds) / sum(step_seconds)


class Unwatched:
    """Nobody watches the run: this process only asks once a second whether it still trains."""

    def follow(self, run_id: str) -> None:
        """Nothing to open."""

    def pause(self) -> None:
        """Wait between two checks of whether the run still trains."""
        time.sleep(1.0)

    def report(self) -> dict:
        """Nothing to report."""
        return {}

    def close(self) -> None:
        """Nothing to close."""


class BrowserWatch(Unwatched):
    """The app served for `studio` on a free local port, with a headless Chromium page (as the tests' `serve` fixture
    serves and drives them) that follows a run on the Training tab; counts the page's requests."""

    def __init__(self, studio: Studio) -> None:
        from playwright.sync_api import sync_playwright

        from engine.training.launch import free_port
        from ui.server import ServerThread, build_server

        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.server = ServerThread(build_server(studio, "en"), port).start()
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 1000})
        self.requests: list[float] = []
        self.page.on("request", lambda request: self._count(request.url))
        self.following_since = 0.0

    def _count(self, url: str) -> None:
        if "/queue/join" in url or "/run/predict" in url:  # an event through the queue, or straight (queue=False)
            self.requests.append(time.time())

    def follow(self, run_id: str) -> None:
        """Open the app, go to the Training tab and wait until it shows run `run_id`."""
        self.page.goto(self.url)
        self.page.get_by_role("tab", name="3. Training").click()
        self.page.locator("#run-status").get_by_text(run_id).wait_for(timeout=120_000)
        self.following_since = time.time()

    def pause(self) -> None:
        """Wait a second, serving the page's events meanwhile."""
        self.page.wait_for_timeout(1000)

    def report(self) -> dict:
        """When the page followed the run, and when it sent each request of the app's queue."""
        return {"following_since": self.following_since, "requests": self.requests}

    def close(self) -> None:
        """Close the browser and stop the server."""
        self.browser.close()
        self.playwright.stop()
        self.server.stop()


def _worker(config: TrainConfig, folder: Path, watched: bool) -> dict:
    """The run through `Studio.start` until it ends (watched by a browser or not): the seconds of each step after
    the first and when the first step ended, from its log events, with what the watcher reports."""
    from bench.training_bench import _result

    studio = Studio(folder / "runs")
    watcher = BrowserWatch(studio) if watched else Unwatched()
    try:
        run_id = studio.start(config)
        watcher.follow(run_id)
        while studio.is_live():
            watcher.pause()
        report = watcher.report()
    finally:
        watcher.close()
    state = studio.snapshot(run_id).state.value
    if state != "DONE":
        raise SystemExit(f"run {run_id} ended {state}: see {folder / 'runs' / run_id / 'train.log'}")
    logs = [e for e in studio.events_since(run_id, 0)[0] if e.kind == "log" and e.tokens_seen is not None]
    times = [e.time for e in logs]
    return {"steps": _result(times, [e.tokens_seen for e in logs])["steps"], "first_step_at": times[0],
            "last_step_at": times[-1], **report}


def _bare(config: TrainConfig, folder: Path) -> dict:
    """TRL's SFTTrainer with the run's settings, no studio around it: the seconds of each step after the first."""
    from bench.training_bench import _bare_trl

    return {"steps": _bare_trl(config, folder)["steps"]}


MEASURES = {
    "bare": _bare,
    "worker": lambda config, folder: _worker(config, folder, watched=False),
    "watched": lambda config, folder: _worker(config, folder, watched=True),
}


def _measure(arm: str, steps: int, folder: Path) -> dict:
    """One arm in a fresh Python process, as a user would run it (nothing shared between measurements)."""
    child = subprocess.run([sys.executable, "-m", "bench.worker_bench", "--child", arm, "--steps", str(steps),
                            "--folder", str(folder / arm)], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if child.returncode != 0:
        raise SystemExit(f"[worker] {arm} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _round_line(index: int, rates: dict[str, float], watched: dict) -> str:
    """One round's speeds and ratios, and how the page polled during the watched run's timed steps."""
    timed = [t for t in watched["requests"] if watched["first_step_at"] <= t <= watched["last_step_at"]]
    seconds = watched["last_step_at"] - watched["first_step_at"]
    late = watched["following_since"] > watched["first_step_at"]
    return (f"[worker] round {index + 1}: " + ", ".join(f"{arm} {rate:.3f} steps/s" for arm, rate in rates.items())
            + f"; worker/bare {rates['worker'] / rates['bare']:.3f}, watched/worker "
              f"{rates['watched'] / rates['worker']:.3f}; page: {len(timed) / seconds:.1f} requests/s while timed"
            + (" (LATE: it followed the run only after the warm-up step)" if late else ""))


def run(steps: int, rounds: int) -> dict[str, float]:
    """Measure every arm `rounds` times, alternated, printing each round; returns each arm's median steps/s."""
    rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        loader.resolve_model(BUNDLED_MODEL_ID)
        print(f"[worker] bundled model, batch {BATCH}, max_length {MAX_LENGTH}, {steps} timed steps after 1 warm-up, "
              f"CPU threads {os.cpu_count()}; every arm in its own process, {rounds} round(s) alternated", flush=True)
        for index in range(rounds):
            order = ARMS if index % 2 == 0 else tuple(reversed(ARMS))
            results = {arm: _measure(arm, steps, Path(tmp) / f"round-{index}") for arm in order}
            now = {arm: steps_per_second(results[arm]["steps"]) for arm in ARMS}
            for arm in ARMS:
                rates[arm].append(now[arm])
            print(_round_line(index, now, results["watched"]), flush=True)
    medians = {arm: statistics.median(values) for arm, values in rates.items()}
    print(f"[worker] median of {rounds}: " + ", ".join(f"{arm} {rate:.3f} steps/s" for arm, rate in medians.items()))
    print(f"[worker] worker / bare TRL = {medians['worker'] / medians['bare']:.3f}x (goal >= 0.97x); "
          f"Training tab open in Chromium: {100 * (1 - medians['watched'] / medians['worker']):+.1f}% slower than "
          f"no browser (goal < 3%)")
    return medians


def main(argv: list[str] | None = None) -> None:
    """Run the bench (`--steps`, `--rounds`), or one measurement in this process (`--child ARM`)."""
    parser = argparse.ArgumentParser(prog="python -m bench worker")
    parser.add_argument("--steps", type=int, default=int(os.environ.get("BENCH_WORKER_STEPS", "12")),
                        help="timed steps per run, after one warm-up step")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_WORKER_ROUNDS", "4")),
                        help="rounds of the three arms, alternated")
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.child:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps(MEASURES[args.child](tiny_config(args.steps), Path(args.folder))))
        return
    run(args.steps, args.rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
