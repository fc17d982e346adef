"""Studio: the engine's public face for the UI, the CLI and scripts (one runner, one chat model)."""
from __future__ import annotations

from pathlib import Path

from engine import data, presets
from engine.config import TrainConfig
from engine.errors import EngineError
from engine.events import Event, RunSnapshot
from engine.inference import AnswerPair, ChatModel, GenParams
from engine.runner import JobFactory, Runner, RunSummary, real_job_factory


class Studio:
    """Everything a front end needs, as typed objects; raises EngineError with codes."""

    def __init__(self, runs_root: str | Path = "runs", job_factory: JobFactory = real_job_factory) -> None:
        self.runner = Runner(runs_root, job_factory)
        self.chat = ChatModel()

    # configuration
    def default_config(self) -> TrainConfig:
        return presets.default_config()

    def presets(self) -> list[presets.Preset]:
        return presets.list_presets()

    def apply_preset(self, name: str, base: TrainConfig) -> TrainConfig:
        return presets.apply_preset(name, base)

    # data
    def inspect_dataset(self, path: str | Path) -> data.DatasetReport:
        return data.load_report(path)

    # training
    def start(self, config: TrainConfig, run_dir: str | Path | None = None) -> str:
        return self.runner.start(config, run_dir)

    def stop(self) -> bool:
        return self.runner.stop()

    def events_since(self, run_id: str | None, cursor: int) -> tuple[list[Event], int]:
        return self.runner.events_since(run_id, cursor)

    def snapshot(self, run_id: str | None = None) -> RunSnapshot:
        return self.runner.snapshot(run_id)

    def list_runs(self) -> list[RunSummary]:
        return self.runner.list_runs()

    # chat
    def compare(self, run_id: str, prompt: str, params: GenParams = GenParams()) -> AnswerPair:
        """Base and adapter answers to `prompt` for a finished run."""
        if self.runner.is_live():
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        run_dir = self.runner.run_dir(run_id) or Path(run_id)
        return self.chat.compare(run_dir, [{"role": "user", "content": prompt}], params)
