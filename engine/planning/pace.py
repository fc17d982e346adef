"""How fast runs went on this computer: the last finished runs' training speed and the time they took to start, so
a run's time estimate is what this computer measured rather than a table's guess.

A run's start is everything besides its steps: from the click (its first event) to its first step (starting the
worker, importing torch, transformers and TRL, reading the data, loading the model), and saving after its last step.
A short run is mostly start: two steps of the bundled model on 2 CPU cores took 39 s, 21 s of them before the first
step. Without a finished run of the same model on record, the start is taken as IMPORT_SECONDS plus the checkpoint's
16-bit weights read at LOAD_BYTES_PER_SECOND. The speed (tokens per second) is taken from the newest finished run of
the same model with the same settings that decide it (`speed_settings`), as the median of its logged speeds.
"""
from __future__ import annotations

import functools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.config import TrainConfig
from engine.models.shapes import ModelShape

IMPORT_SECONDS = 20.0  # the worker started and its libraries imported: 13-21 s measured on 2 CPU cores
LOAD_BYTES_PER_SECOND = 400e6  # a checkpoint read from disk and placed on the device
RECENT_RUNS = 20  # the newest runs looked at
SPEED_FIELDS = ("model_name_or_path", "method", "load_in_4bit", "max_length", "per_device_train_batch_size",
                "gradient_checkpointing", "num_gpus", "lora_r")


@dataclass(frozen=True)
class RecordedPace:
    """What one finished run measured: its model, the settings its speed depends on, its median tokens per second
    (None when it logged none) and its start in seconds."""

    model: str
    speed_settings: tuple
    tokens_per_second: float | None
    start_seconds: float


@dataclass(frozen=True)
class MeasuredPace:
    """What this computer measured for a run's settings: tokens per second and start seconds, each None when no
    finished run on record matches."""

    tokens_per_second: float | None = None
    start_seconds: float | None = None


def speed_settings(settings: dict) -> tuple:
    """The values of the settings a run's tokens per second depends on (`SPEED_FIELDS`), from a config's dict."""
    return tuple(settings.get(name) for name in SPEED_FIELDS)


@functools.lru_cache(maxsize=256)
def _recorded(events_file: Path, _modified_ns: int) -> RecordedPace | None:
    """The pace a run folder's events and config record (cached until its events file changes); None unless the
    run finished (DONE) after training."""
    try:
        settings = yaml.safe_load((events_file.parent / "config.yaml").read_text(encoding="utf-8")) or {}
        events = [json.loads(line) for line in events_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, yaml.YAMLError):
        return None
    states = {e["data"].get("state"): e["time"] for e in events if e.get("kind") == "status"}
    if not isinstance(settings, dict) or not events or "DONE" not in states or "TRAINING" not in states:
        return None
    start = states["TRAINING"] - events[0]["time"] + states["DONE"] - states.get("SAVING", states["DONE"])
    rates = [e["data"]["tokens_per_second"] for e in events
             if e.get("kind") == "log" and (e["data"].get("tokens_per_second") or 0) > 0]
    speed = statistics.median(rates[1:] or rates) if rates else None  # the first step also warms up
    return RecordedPace(str(settings.get("model_name_or_path", "")), speed_settings(settings), speed, start)


def measured_pace(runs_root: Path, config: TrainConfig) -> MeasuredPace:
    """The newest finished runs' measurements for `config`: the start of any run of its model, the speed of one
    with its speed settings."""
    wanted, speed, start = speed_settings(config.to_dict()), None, None
    for modified, events_file in sorted(_modified(Path(runs_root)), reverse=True)[:RECENT_RUNS]:
        pace = _recorded(events_file, modified)
        if pace is None or pace.model != config.model_name_or_path:
            continue
        start = pace.start_seconds if start is None else start
        speed = pace.tokens_per_second if speed is None and pace.speed_settings == wanted else speed
        if speed is not None:
            break
    return MeasuredPace(speed, start)


def _modified(runs_root: Path) -> list[tuple[int, Path]]:
    """(modification time in ns, path) of every run's events file; a run deleted meanwhile is left out."""
    found = []
    for events_file in runs_root.glob("*/events.jsonl"):
        try:
            found.append((events_file.stat().st_mtime_ns, events_file))
        except OSError:
            continue
    return found


def start_seconds(shape: ModelShape, measured: float | None) -> float:
    """A run's start: as measured, else IMPORT_SECONDS plus its model's 16-bit weights read at
    LOAD_BYTES_PER_SECOND."""
    return measured if measured is not None else IMPORT_SECONDS + 2 * shape.total_params / LOAD_BYTES_PER_SECOND
