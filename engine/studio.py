"""Studio: the engine's public face for the UI, the CLI and scripts (one runner, one chat model)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import presets
from engine.chat.inference import AnswerPair, ChatModel, GenParams
from engine.config import TrainConfig
from engine.data import checks, reading, splits
from engine.data.editor import DatasetEditor
from engine.data.mapping import ColumnMapping
from engine.errors import EngineError, Issue
from engine.models import loader
from engine.study.questions import held_out_questions, write_questions
from engine.study.store import StudyStore, load_questions
from engine.training import adapters
from engine.training.events import Event, RunSnapshot
from engine.training.runner import JobFactory, Runner, RunSummary, real_job_factory


@dataclass
class DatasetCheck:
    """A dataset's row report (with the dataset-level warnings added) and its summary."""

    report: reading.DatasetReport
    summary: checks.DatasetSummary


@dataclass
class RunPlan:
    """Everything known before training: problems, the data check, advice and the estimates."""

    config: TrainConfig
    issues: list[Issue]
    dataset: DatasetCheck | None = None
    memory: object | None = None      # engine.estimate.MemoryEstimate
    time: object | None = None        # engine.estimate.TimeEstimate
    trainable: tuple[int, int] | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


class Studio:
    """Everything a front end needs, as typed objects; raises EngineError with codes."""

    def __init__(self, runs_root: str | Path = "runs", job_factory: JobFactory = real_job_factory,
                 data_root: str | Path = "data") -> None:
        self.runner = Runner(runs_root, job_factory)
        self.chat = ChatModel()
        self.data_root = Path(data_root)
        self.editor: DatasetEditor | None = None
        self._studies: StudyStore | None = None
        self._tokenizers: dict[str, object] = {}

    # configuration
    def default_config(self) -> TrainConfig:
        return presets.default_config()

    def presets(self) -> list[presets.Preset]:
        return presets.list_presets()

    def apply_preset(self, name: str, base: TrainConfig) -> TrainConfig:
        return presets.apply_preset(name, base)

    # data
    def inspect_dataset(self, path: str | Path) -> reading.DatasetReport:
        return reading.load_report(path)

    def check_dataset(self, path: str | Path, config: TrainConfig | None = None,
                      mapping: ColumnMapping | None = None) -> DatasetCheck:
        """Row checks, then dataset checks with token counts for the config's model and max length.

        The same function serves the Dataset tab and `python app.py validate`; when the model's
        tokenizer cannot be had (offline hub id), token counts are skipped with a warning.
        """
        config = config or self.default_config()
        report = reading.load_report(path, mapping)
        tokenizer = None
        if report.usable:
            try:
                tokenizer = self.tokenizer(config.model_name_or_path)
            except EngineError as error:
                report.issues.append(Issue("warning", "dataset_no_token_count",
                                           params={"model": config.model_name_or_path, "reason": error.code}))
        evaluation = None
        if report.usable and (config.eval_split > 0 or config.eval_rows > 0) and len(report.examples) > 1:
            _train, held_out = splits.split_examples(report.examples, config.eval_split, config.seed, config.eval_rows)
            evaluation = list(held_out) if held_out is not None else None
        extra, summary = checks.check_dataset(report, tokenizer, config.max_length, config.num_train_epochs,
                                              evaluation)
        report.issues.extend(extra)
        return DatasetCheck(report, summary)

    def plan(self, config: TrainConfig) -> RunPlan:
        """Validate the config and data, give the guides' advice, estimate memory and time (no training).

        Shared by the Hyperparameters tab and `python app.py train --dry-run`.
        """
        from engine.planning import advice, estimate

        issues = config.validate()
        plan = RunPlan(config, issues)
        tokens = longest = None
        if config.dataset_path and Path(config.dataset_path).is_file():
            plan.dataset = self.check_dataset(config.dataset_path, config)
            summary = plan.dataset.summary
            issues += [i for i in plan.dataset.report.errors if i.row is None]
            tokens = summary.tokens_per_epoch or None
            longest = max(summary.token_lengths) if summary.token_lengths else None
            issues += advice.advise(config, rows=summary.rows,
                                    longest_tokens=max(summary.token_lengths) if summary.token_lengths else None,
                                    truncated_rows=summary.truncated_rows if summary.token_lengths else None)
        else:
            issues += advice.advise(config)
        shape = estimate.shape_of(config.model_name_or_path)
        if shape is not None:
            device = estimate.detect_device()
            # batches are padded only to their longest row, so real rows shorter than max_length need less
            plan.memory = estimate.estimate_memory(config, shape, device,
                                                   seq_len=min(longest, config.max_length) if longest else None)
            plan.trainable = estimate.trainable_parameters(config, shape)
            if tokens:
                plan.time = estimate.estimate_time(config, shape, tokens, device)
        return plan

    def linear_names(self, model_name: str) -> list[str]:
        """The model's LoRA-targetable linear layer names (EngineError when it cannot be inspected)."""
        return loader.linear_names_of(model_name)

    def trainable_parameters(self, config: TrainConfig) -> tuple[int, int] | None:
        """(trainable, total) parameters of the config's LoRA on its model, or None for an unknown model."""
        from engine.planning import estimate

        shape = estimate.shape_of(config.model_name_or_path)
        return estimate.trainable_parameters(config, shape) if shape is not None else None

    def tokenizer(self, model_name: str):
        """The tokenizer (with chat template) of a model, loaded once per model."""
        if model_name not in self._tokenizers:
            self._tokenizers[model_name] = loader.load_tokenizer(loader.resolve_model(model_name))
        return self._tokenizers[model_name]

    def open_editor(self, path: str | Path) -> DatasetEditor:
        """Load a dataset into the row editor (the one dataset being edited)."""
        self.editor = DatasetEditor.open(path, self.data_root)
        return self.editor

    def training_view(self, example: dict, config: TrainConfig | None = None):
        """Segments (text, kind) of one example as the config's model will be trained on it."""
        from engine.data import preview

        config = config or self.default_config()
        tokenizer = self.tokenizer(config.model_name_or_path)
        return preview.segments(preview.training_view(example, tokenizer, config.max_length), tokenizer)

    # training
    def start(self, config: TrainConfig, run_dir: str | Path | None = None) -> str:
        return self.runner.start(config, run_dir)

    def stop(self) -> bool:
        return self.runner.stop()

    def resume(self, run_id: str) -> str:
        return self.runner.resume(run_id)

    def delete_run(self, run_id: str) -> None:
        self.runner.delete(run_id)

    def events_since(self, run_id: str | None, cursor: int) -> tuple[list[Event], int]:
        return self.runner.events_since(run_id, cursor)

    def snapshot(self, run_id: str | None = None) -> RunSnapshot:
        return self.runner.snapshot(run_id)

    def list_runs(self) -> list[RunSummary]:
        return self.runner.list_runs()

    # blind studies
    @property
    def studies(self) -> StudyStore:
        """The studies database (`<data folder>/studies.db`), opened on first use."""
        if self._studies is None:
            self._studies = StudyStore(self.data_root / "studies.db")
        return self._studies

    def studies_questions(self, path: str | Path) -> list[dict]:
        return load_questions(path)

    def held_out_questions_file(self, choice: str) -> Path:
        """Write the held-out rows of the chosen adapter's run as a question file under the data
        folder (prompt + reference), for a study; returns its path."""
        run_dir, _adapter = adapters.locate(self.adapter_path(choice))
        questions = held_out_questions(run_dir)
        return write_questions(self.data_root / "studies" / f"{run_dir.name}-held-out.jsonl", questions)

    # adapters
    def adapter_choices(self) -> list[adapters.AdapterChoice]:
        """Every adapter to chat with or study: each run's final adapter and its checkpoints, newest run first."""
        return [choice for run in self.list_runs() for choice in adapters.choices_for(run.run_id, Path(run.run_dir))]

    def adapter_path(self, choice: str) -> Path:
        """The folder `ChatModel` opens for a choice: the run folder, or one of its checkpoint folders;
        raises `run_not_found` when no adapter is there."""
        run_id, checkpoint = adapters.split_choice(choice)
        run_dir = self.runner.run_dir(run_id) or Path(run_id)
        path = run_dir / "checkpoints" / checkpoint if checkpoint else run_dir
        adapters.locate(path)
        return path

    # chat
    def stream_compare(self, run_id: str, prompt: str, params: GenParams = GenParams(),
                       history: tuple[list[dict], list[dict]] = ([], [])):
        """`compare`, yielding (base so far, adapter so far) while the answers are generated."""
        if self.runner.is_live():
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        run_dir = self.adapter_path(run_id)
        turn = [{"role": "user", "content": prompt}]
        yield from self.chat.stream_compare(run_dir, list(history[0]) + turn, params, list(history[1]) + turn)

    def compare(self, run_id: str, prompt: str, params: GenParams = GenParams(),
                history: tuple[list[dict], list[dict]] = ([], [])) -> AnswerPair:
        """Base and adapter answers to `prompt` for an adapter choice (a run id, or `run_id@checkpoint-N`);
        `history` holds each side's earlier turns (base, adapter) so a multi-turn chat continues on both sides."""
        if self.runner.is_live():
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        run_dir = self.adapter_path(run_id)
        turn = [{"role": "user", "content": prompt}]
        return self.chat.compare(run_dir, list(history[0]) + turn, params, list(history[1]) + turn)
