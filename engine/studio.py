"""Studio: the engine's public face for the UI, the CLI and scripts (one runner, one chat model)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import presets
from engine.chat.inference import AnswerPair, ChatModel, GenParams
from engine.config import TrainConfig
from engine.data import checks, reading, splits, uploads
from engine.data.mapping import ColumnMapping
from engine.data.sessions import EditorPage, EditorSessions, Exclusion
from engine.errors import EngineError, Issue, errors_of
from engine.export.desk import ExportDesk
from engine.models import loader
from engine.models.desk import ModelDesk
from engine.study.desk import StudyDesk
from engine.study.store import StudyStore
from engine.system.device import DeviceLock
from engine.system.workspace import Workspace
from engine.training import adapters
from engine.training.events import Event, RunSnapshot
from engine.training.runner import LOCK_FILE, JobFactory, Runner, RunSummary


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
    memory: object | None = None      # engine.planning.estimate.MemoryEstimate
    time: object | None = None        # engine.planning.estimate.TimeEstimate
    trainable: tuple[int, int] | None = None
    start_seconds: float = 0.0        # besides the steps: starting, loading, saving (engine.planning.pace)
    measured_start: bool = False      # `start_seconds` (and `time`, when its source is "measured") from a past run

    @property
    def errors(self) -> list[Issue]:
        """The plan's issues of severity "error" (they block the run)."""
        return errors_of(self.issues)


class Studio(StudyDesk, ExportDesk, ModelDesk):
    """Everything a front end needs, as typed objects; raises EngineError with codes. The blind-study actions
    come from `StudyDesk` (`engine/study/desk.py`), the exports from `ExportDesk` (`engine/export/desk.py`), the
    base-model picker and downloads from `ModelDesk` (`engine/models/desk.py`)."""

    def __init__(self, runs_root: str | Path = "runs", job_factory: JobFactory | None = None,
                 data_root: str | Path = "data", workspace: Workspace = Workspace()) -> None:
        lock = DeviceLock(Path(runs_root) / LOCK_FILE)  # one GPU job at a time: training, chat, studies, metrics
        self.runner = Runner(runs_root, job_factory, lock)  # no job factory: each run in a worker process
        self.chat = ChatModel(lock)
        self.data_root = Path(data_root)
        self.workspace = workspace  # the folders the paths it is given must lie in (confined for the web)
        self._editors = EditorSessions(self.data_root)
        self._studies: StudyStore | None = None
        self._tokenizers: dict[str, object] = {}

    # configuration
    def default_config(self) -> TrainConfig:
        """The starting config for this machine: bundled model, sample data; QLoRA with CUDA, else the CPU preset."""
        return presets.default_config()

    def presets(self) -> list[presets.Preset]:
        """Every preset, shipped and saved, sorted by name."""
        return presets.list_presets()

    def apply_preset(self, name: str, base: TrainConfig) -> TrainConfig:
        """`base` with preset `name`'s settings on top; raises EngineError for an unknown preset or setting."""
        return presets.apply_preset(name, base)

    def preset_description(self, name: str, lang: str) -> str:
        """What the preset is for, in `lang` (English when it has no such text)."""
        description = presets.load_preset(name).description
        return description.get(lang) or description.get("en", "")

    def save_preset(self, name: str, config: TrainConfig) -> str:
        """Save `config` as the user preset `name`; returns the name it is saved under (lower case)."""
        return presets.save_preset(name, config).stem

    def config_from_form(self, values: dict[str, Any]) -> TrainConfig:
        """The default config with a form's values ({field: value}; None leaves the default); raises
        EngineError naming a field that does not fit."""
        return self.default_config().replace(**{name: v for name, v in values.items() if v is not None})

    def training_script(self, config: TrainConfig) -> str:
        """A standalone TRL + PEFT script that trains like `config`."""
        from engine.export.script import python_script

        return python_script(config)

    # data
    def keep_upload(self, path: str | Path, field: str) -> Path:
        """Keep an uploaded file (one the web server received, named by the path field `field`) in the data
        folder's `uploads/`, where runs and studies can still read it later; returns the kept copy's path."""
        return uploads.keep_upload(self.workspace.check(path, field), self.data_root / "uploads")

    def inspect_dataset(self, path: str | Path) -> reading.DatasetReport:
        """Read a dataset file, map its columns and check every row (no tokenizer, no dataset-level checks)."""
        return reading.load_report(self.workspace.check(path, "dataset_path"))

    def check_dataset(self, path: str | Path, config: TrainConfig | None = None,
                      mapping: ColumnMapping | None = None) -> DatasetCheck:
        """Row checks, then dataset checks with token counts for the config's model and max length.

        The same function serves the Dataset tab and `python app.py validate`; when the model's
        tokenizer cannot be had (offline hub id), token counts are skipped with a warning.
        """
        config = config or self.default_config()
        report = reading.load_report(self.workspace.check(path, "dataset_path"), mapping,
                                     reading.ReadOptions.of(config))
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
        from engine.planning import advice, estimate, pace

        self._check_paths(config)
        issues = config.validate()
        plan = RunPlan(config, issues)
        tokens = longest = None
        if config.dataset_path and Path(config.dataset_path).is_file():
            plan.dataset = self.check_dataset(config.dataset_path, config)
            summary = plan.dataset.summary
            issues += [i for i in plan.dataset.report.errors if i.row is None]
            tokens = summary.tokens_per_epoch or None
            longest = max(summary.token_lengths) if summary.token_lengths else None
            issues += advice.advise(config, rows=summary.rows, longest_tokens=longest,
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
            measured = pace.measured_pace(self.runner.runs_root, config)
            plan.start_seconds = pace.start_seconds(shape, measured.start_seconds)
            plan.measured_start = measured.start_seconds is not None
            if tokens:
                plan.time = estimate.estimate_time(config, shape, tokens, device, measured.tokens_per_second)
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

    # dataset editing: each `session` (a front end's id for one browser session) edits only its own dataset
    def open_editor(self, session: str, path: str | Path) -> None:
        """Load a dataset into the session's row editor (replacing the one it edited)."""
        self._editors.open(session, self.workspace.check(path, "dataset_path"))

    def editor_page(self, session: str, number: Any = 1, size: int = 20, query: str = "") -> EditorPage | None:
        """Page `number` of the session's rows matching `query`; None when it has no dataset open."""
        return self._editors.page(session, number, size, query)

    def edit_dataset(self, session: str, change: str, *args: Any) -> int | None:
        """Change the session's rows: `change` names one of `engine.data.sessions.EDITS` ("apply" grid records,
        "add", "duplicate" a position, "delete" positions, "dedup", "strip", "drop_empty", "undo"); returns the count
        to announce, None when the session has no dataset open."""
        return self._editors.edit(session, change, *args)

    def save_dataset(self, session: str) -> Path | None:
        """Save the session's rows as the dataset's next version; None when it has no dataset open."""
        return self._editors.save(session)

    def export_dataset(self, session: str, folder: str | Path | None = None) -> Path | None:
        """Write the session's rows to `<folder>/<dataset name>.jsonl` (default: a new temporary folder);
        None when it has no dataset open."""
        return self._editors.export(session, self.workspace.check(folder, "export") if folder else None)

    def exclude_rows_with_errors(self, session: str, path: str | Path, config: TrainConfig) -> Exclusion | None:
        """Delete the rows with errors from the session's dataset (undoable) and save a version; None when no row
        has an error. The rows checked are the ones the session edits, unsaved edits included; when `path` names
        another dataset than the one it edits, that dataset is opened first."""
        self.workspace.check(path, "dataset_path")
        editor = self._editors.get(session)
        if editor is None or editor.source is None or Path(editor.source).resolve() != Path(path).resolve():
            editor = self._editors.open(session, path)
        with tempfile.TemporaryDirectory(prefix="exclude-") as folder:
            rows_file = Path(folder) / f"{editor.name}.jsonl"
            rows_file.write_text(editor.to_jsonl(), encoding="utf-8")
            result = self.check_dataset(rows_file, config)  # row N of this file is the editor's position N
        bad = sorted({issue.row for issue in result.report.errors if issue.row is not None})
        if not bad:
            return None
        editor.delete_rows(bad)
        return Exclusion(editor.save(), len(bad), result.report.mapping)

    def training_view(self, example: dict, config: TrainConfig | None = None):
        """Segments (text, kind) of one example as the config's model will be trained on it."""
        from engine.data import preview

        config = config or self.default_config()
        tokenizer = self.tokenizer(config.model_name_or_path)
        return preview.segments(preview.training_view(example, tokenizer, config.max_length), tokenizer)

    # training
    def start(self, config: TrainConfig, run_dir: str | Path | None = None) -> str:
        """Start training `config` in the background after checking it and its dataset; returns the run id."""
        self._check_paths(config)
        return self.runner.start(config, run_dir)

    def stop(self) -> bool:
        """Ask the live run to stop after the current step (its adapter is saved); False when none is training."""
        return self.runner.stop()

    def resume(self, run_id: str) -> str:
        """Continue run `run_id` in the background from its latest checkpoint; returns the run id."""
        run_dir = self.runner.run_dir(run_id)
        if run_dir is not None:
            self._check_paths(TrainConfig.from_yaml(run_dir / "config.yaml"))
        return self.runner.resume(run_id)

    def _check_paths(self, config: TrainConfig) -> None:
        """Refuse a config whose dataset, mixed-in dataset or adapter to continue lies outside the workspace (the
        runs folder holds the adapters a web form may name; the command line is not confined)."""
        self.workspace.check(config.dataset_path, "dataset_path")
        self.workspace.check(config.mix_dataset_path, "mix_dataset_path")
        self.workspace.check(config.init_adapter, "init_adapter")

    def delete_run(self, run_id: str) -> None:
        """Delete a run's folder; raises `run_not_found`, or `run_is_live` while it trains."""
        self.runner.delete(run_id)

    def events_since(self, run_id: str | None, cursor: int) -> tuple[list[Event], int]:
        """Events of `run_id` (default: the current run) from `cursor` on, and the cursor to read from next."""
        return self.runner.events_since(run_id, cursor)

    def snapshot(self, run_id: str | None = None) -> RunSnapshot:
        """The state, progress and last metrics of `run_id` (default: the current run)."""
        return self.runner.snapshot(run_id)

    def list_runs(self) -> list[RunSummary]:
        """Every run under the runs folder (and any this studio started elsewhere), newest first."""
        return self.runner.list_runs()

    def current_run_id(self) -> str | None:
        """The run training now (started here or by another process, such as `python app.py train`), else the
        run started or resumed last; None before the first."""
        self.runner.discover()
        return self.runner.current_run_id

    def worker_pid(self, run_id: str) -> int | None:
        """The process id of the worker training run `run_id` now; None when no worker trains it."""
        return self.runner.worker_pid(run_id)

    def is_live(self, run_id: str | None = None) -> bool:
        """Whether a run is training now; with `run_id`, whether that run is the live one."""
        return self.runner.is_live() and (run_id is None or self.runner.current_run_id == run_id)

    # adapters
    def adapter_choices(self) -> list[adapters.AdapterChoice]:
        """Every adapter to chat with or study: each run's final adapter and its checkpoints, newest run first."""
        return [choice for run in self.list_runs() for choice in adapters.choices_for(run.run_id, Path(run.run_dir))]

    def adapter_path(self, choice: str) -> Path:
        """The folder `ChatModel` opens for a choice: the run folder, or one of its checkpoint folders;
        raises `run_not_found` when no adapter is there (or no choice was made)."""
        run_id, checkpoint = adapters.split_choice(choice or "")
        run_dir = self.runner.run_dir(run_id)  # a run this studio knows: never a path from the request
        if run_dir is None or (checkpoint and Path(checkpoint).name != checkpoint):
            raise EngineError("run_not_found", {"path": choice or "-"}, hint="hint_pick_run")
        path = run_dir / "checkpoints" / checkpoint if checkpoint else run_dir
        adapters.locate(path)
        return path

    def side_path(self, choice: str) -> Path | None:
        """The folder of one side of a comparison: None for `BASE_CHOICE` (the base model), else `adapter_path`."""
        return None if choice == adapters.BASE_CHOICE else self.adapter_path(choice)

    def _baseline(self, choice: str) -> dict[str, Path]:
        """The `baseline` keyword for the chat model: none for the base model (its default), else the folder."""
        path = self.side_path(choice)
        return {"baseline": path} if path is not None else {}

    # chat
    def stream_compare(self, run_id: str, prompt: str, params: GenParams = GenParams(),
                       history: tuple[list[dict], list[dict]] = ([], []), baseline: str = adapters.BASE_CHOICE):
        """The baseline's and the candidate's answers to `prompt`, the candidate an adapter choice (a run id, or
        `run_id@checkpoint-N`) and the baseline another choice or `BASE_CHOICE` (the base model), yielding (baseline
        so far, candidate so far) while both are generated together; `history` holds each side's earlier turns
        (baseline, candidate) so a multi-turn chat continues on both sides. Refused (`busy_generating`) while a run
        trains, or while its worker has not yet freed the device."""
        self._refuse_while_training()
        run_dir, sides = self.adapter_path(run_id), self._baseline(baseline)
        turn = [{"role": "user", "content": prompt}]
        yield from self.chat.stream_compare(run_dir, list(history[0]) + turn, params, list(history[1]) + turn,
                                            **sides)

    def stream_answer(self, choice: str, messages: list[dict], params: GenParams = GenParams(),
                      side: str = "adapter", baseline: str = adapters.BASE_CHOICE):
        """One side's answer ("adapter": the candidate `choice`, or "base": the `baseline`, default the base model)
        to the conversation `messages`, yielding the text so far while it is generated. Refused (`busy_generating`)
        while a run trains, or while its worker has not yet freed the device."""
        self._refuse_while_training()
        run_dir, sides = self.adapter_path(choice), self._baseline(baseline)
        yield from self.chat.stream_answer(run_dir, messages, params, side, **sides)

    def _refuse_while_training(self) -> None:
        """Raise `busy_generating` while a run is training (not once it has ended: its worker may still be
        exiting, and the device lock says when the device is free)."""
        if self.runner.is_live() and self.runner.snapshot().state.is_live:
            raise EngineError("busy_generating", hint="hint_wait_or_stop")

    # the command line
    def run_dir(self, run_id: str) -> Path | None:
        """The folder of a run (None when there is no such run)."""
        return self.runner.run_dir(run_id)

    def compare(self, folder: str | Path, prompt: str, baseline: str | Path | None = None) -> AnswerPair:
        """The baseline's (`baseline`, default the base model) and the candidate's (`folder`) answers to one prompt,
        whole rather than streamed (`python app.py chat --run [--baseline]`): each folder is a run folder or one of
        its checkpoint folders, wherever it is; one model load serves both sides."""
        self._refuse_while_training()
        adapters.locate(Path(folder))
        sides = {"baseline": Path(baseline)} if baseline else {}
        return self.chat.compare(Path(folder), [{"role": "user", "content": prompt}], **sides)
