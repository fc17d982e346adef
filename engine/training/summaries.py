"""The runs list's summaries, each computed again only when its run's files changed, so polling is cheap.

The Training tab asks for every run's summary twice a second. Reading and folding each run's `events.jsonl`
again on every poll costs time in proportion to all the events of all runs, on the cores that train. So a
summary is kept with its run's fingerprint (the size and modification time, in nanoseconds, of its
`events.jsonl`, and the modification times of its `adapter/` and `checkpoints/` folders) and computed again only
when that fingerprint changed: a finished run is read once, a live one once per batch of new events.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.training import adapters
from engine.training.events import EventLog, RunState, snapshot

FINGERPRINTED = ("events.jsonl", "adapter", "checkpoints")  # what a summary is computed from, in a run's folder


@dataclass(frozen=True)
class RunSummary:
    """One run in the runs list: state, start time and duration (seconds), step, last losses, adapter and resume."""

    run_id: str
    run_dir: str
    state: RunState
    started: float
    has_adapter: bool
    last_loss: float | None
    last_eval_loss: float | None = None
    step: int = 0
    duration: float = 0.0
    can_resume: bool = False
    skipped_lines: int = 0  # lines of its events.jsonl that could not be read


def summarize(run_id: str, run_dir: Path, log: EventLog) -> RunSummary:
    """The summary of run `run_id` from its folder and its event log (or anything read like one, `since` and
    `skipped`, such as the runner's follower of a worker's log): started at its first event (else when its folder
    was made), lasting until its last; resumable when it is neither live nor done and has a whole checkpoint."""
    events = log.since(0)[0]
    snap = snapshot(run_id, events, log.skipped)
    started = events[0].time if events else run_dir.stat().st_mtime
    duration = events[-1].time - started if events else 0.0
    can_resume = (not snap.state.is_live and snap.state is not RunState.DONE
                  and adapters.latest_checkpoint(run_dir) is not None)
    return RunSummary(run_id, str(run_dir), snap.state, started,
                      (run_dir / "adapter" / adapters.ADAPTER_FILE).is_file(), snap.last_loss, snap.last_eval_loss,
                      snap.step, duration, can_resume, snap.skipped_lines)


def fingerprint(run_dir: Path) -> tuple:
    """What changes whenever a run's summary may change: its folder, and (size, mtime in ns) of each of
    `FINGERPRINTED` there (None for one that is missing). Events are only appended, so a new event changes the
    file's size even within one tick of the file system's clock; a new checkpoint or adapter folder changes its
    parent's or its own modification time."""
    stamps = []
    for name in FINGERPRINTED:
        try:
            status = (run_dir / name).stat()
        except FileNotFoundError:
            stamps.append(None)
            continue
        stamps.append((status.st_size, status.st_mtime_ns))
    return str(run_dir), tuple(stamps)


class RunSummaries:
    """Run summaries kept with their runs' fingerprints; `load(run_id)` reads a run's event log, called only for a
    run that is new or whose files changed since its summary was computed.

    Safe to use from several threads at once (two browser tabs polling): at worst two compute the same summary.
    """

    def __init__(self, load: Callable[[str], EventLog]) -> None:
        self._load = load
        self._kept: dict[str, tuple[tuple, RunSummary]] = {}

    def summary(self, run_id: str, run_dir: Path) -> RunSummary:
        """The summary of run `run_id` in folder `run_dir`: the kept one when its files did not change."""
        seen = fingerprint(run_dir)  # taken before reading: a change during the read is caught on the next call
        kept = self._kept.get(run_id)
        if kept is not None and kept[0] == seen:
            return kept[1]
        fresh = summarize(run_id, run_dir, self._load(run_id))
        self._kept[run_id] = (seen, fresh)
        return fresh

    def newest_first(self, runs: dict[str, Path]) -> list[RunSummary]:
        """The summaries of `runs` (run id -> folder), newest first; a run no longer among them is forgotten."""
        for gone in self._kept.keys() - runs.keys():
            self._kept.pop(gone, None)
        summaries = [self.summary(run_id, run_dir) for run_id, run_dir in runs.items()]
        return sorted(summaries, key=lambda summary: summary.started, reverse=True)
