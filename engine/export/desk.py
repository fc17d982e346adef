"""The studio's export verbs: the adapter package, the merged model, GGUF files with their Ollama Modelfile, the vLLM
line and the run report, each for an adapter choice (a run id, or `run_id@checkpoint-N`) or a source the command
line named by folder.

A part of `Studio` (it uses the studio's runner, chat model, workspace, `adapter_path`, `check_dataset`, `plan` and
studies); front ends call these as `Studio` methods.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.chat.inference import GenParams
from engine.errors import EngineError
from engine.export.source import ExportSource, Progress, no_progress
from engine.locales import message_key
from engine.planning.plan_text import global_batch
from engine.study.questions import held_out_questions
from engine.training.events import EventLog

SAMPLE_PROMPTS = 3  # sample answers, base vs adapter, in the report
SAMPLE_PARAMS = GenParams(max_new_tokens=160)  # greedy, as the studio's chat answers by default


class ExportDesk:
    """The export part of `Studio`: it uses the studio's `runner`, `chat`, `workspace`, `adapter_choices`,
    `adapter_path`, `plan`, `list_studies`, `study_statistics` and `_refuse_while_training`."""

    def export_choices(self) -> list:
        """The adapters that can be exported: each run's final adapter and its complete checkpoints, newest first."""
        return self.adapter_choices()

    def export_source(self, choice: str | ExportSource) -> ExportSource:
        """The source of an adapter choice (a run id or `run_id@checkpoint-N` this studio knows); a source passes
        through. Raises `run_not_found` when there is no adapter there."""
        if isinstance(choice, ExportSource):
            return choice
        return ExportSource.of(self.adapter_path(choice))

    def export_source_at(self, folder: str | Path) -> ExportSource:
        """The source of a run folder (its final adapter) or one of its checkpoint folders, named by path (the
        command line's `--run DIR`), inside the workspace."""
        return ExportSource.of(self.workspace.check(folder, "run"))

    def export_adapter_package(self, choice: str | ExportSource, progress: Progress = no_progress) -> Path:
        """The adapter package zip (PEFT folder, model card, config, loss curve PNG, metrics) of a choice."""
        from engine.export.card import card_facts
        from engine.export.package import write_adapter_package

        source = self.export_source(choice)
        facts = card_facts(source, self._events_of(source), self._study_summary(source))
        return write_adapter_package(source, facts, progress=progress)

    def export_merged(self, choice: str | ExportSource, max_shard_size: str = "2GB",
                      progress: Progress = no_progress) -> Path:
        """The merged model folder (base reloaded in 16-bit, adapter merged in, safetensors shards) of a choice;
        refused while a run trains."""
        from engine.export.merge import merge_adapter

        source = self.export_source(choice)
        with self._holding_device():
            return merge_adapter(source, max_shard_size=max_shard_size, progress=progress)

    def merge_notes(self, choice: str | ExportSource) -> list[tuple[str, dict]]:
        """What to know about a choice's merge, as (catalogue code, params): e.g. a QLoRA run merged into a
        16-bit reload of its base."""
        from engine.export.merge import merge_notes

        return merge_notes(self.export_source(choice))

    def gguf_types(self) -> list[str]:
        """The GGUF types this machine can write now (q4_k_m only with a `llama-quantize` on PATH)."""
        from engine.export.gguf_export import gguf_types

        return gguf_types()

    def export_gguf(self, choice: str | ExportSource, gguf_type: str, progress: Progress = no_progress) -> Path:
        """A GGUF file of `gguf_type` for a choice (merging first when the merged model is missing); refused while
        a run trains."""
        from engine.export.gguf_export import export_gguf

        source = self.export_source(choice)
        with self._holding_device():
            return export_gguf(source, gguf_type, progress=progress)

    def export_modelfile(self, choice: str | ExportSource, gguf_type: str,
                         progress: Progress = no_progress) -> tuple[Path, str]:
        """An Ollama Modelfile beside the choice's GGUF of `gguf_type` (written first when missing) and the exact
        `ollama create` line to run: (Modelfile path, command). An unavailable type is refused first
        (`gguf_type_unavailable`), before any file is looked for."""
        from engine.export.gguf_export import check_type, gguf_path
        from engine.export.ollama import ollama_command, write_modelfile

        gguf_type = check_type(gguf_type)
        source = self.export_source(choice)
        gguf_file = gguf_path(source, gguf_type)
        if not gguf_file.is_file():
            gguf_file = self.export_gguf(source, gguf_type, progress)
        path = write_modelfile(source, gguf_file)
        return path, ollama_command(source.run_id, path)

    @staticmethod
    def ensure_free_space(folder: str | Path, needed_bytes: int) -> None:
        """Raise `export_no_space` (the folder, the gigabytes needed and free) when the disk holding `folder` has
        less than `needed_bytes` free: before a copy of an export is written (a download)."""
        from engine.export.space import ensure_free_space

        ensure_free_space(Path(folder), needed_bytes)

    def vllm_advice(self, choice: str | ExportSource):
        """The exact `vllm serve ... --enable-lora` line for a choice, with its warnings (`VllmAdvice`)."""
        from engine.export.vllm import vllm_command

        return vllm_command(self.export_source(choice))

    def write_report(self, run: str | ExportSource, lang: str = "en", progress: Progress = no_progress) -> Path:
        """The run's self-contained HTML report (`runs/<id>/report.html`) in `lang`: the data check, the config,
        the curves and diagnosis, the estimate against what happened, sample answers base vs adapter (generated
        now: refused while a run trains) and the latest blind study of the adapter."""
        from engine.export.report import ReportFacts
        from engine.export.report import write_report as write_html

        source = self.export_source(run)
        self._refuse_while_training()
        progress(message_key("export_step_facts"), 0.0)
        dataset, estimate = self._planned(source)
        study, stats = self._latest_study(source)
        progress(message_key("export_step_samples"), 0.3)
        samples = self._sample_answers(source)
        progress(message_key("export_step_report"), 0.9)
        facts = ReportFacts(lang=lang, run_id=source.run_id, config=source.config, events=self._events_of(source),
                            dataset=dataset, estimate=estimate, samples=samples, study=study,
                            agreement=stats["agreement"] if stats else None)
        path = write_html(source.run_dir, facts)
        progress(message_key("export_step_done"), 1.0)
        return path

    # what the exports gather
    @staticmethod
    def _events_of(source: ExportSource) -> list:
        """Every event of the source's run, read from its `events.jsonl`."""
        return EventLog.read(source.run_dir / "events.jsonl").since(0)[0]

    def _latest_study(self, source: ExportSource):
        """(`StudySummary`, its statistics) of the newest study with votes that judged this adapter as its candidate,
        naming the study's baseline (the base model, or another run's adapter); (None, None) when none did."""
        from engine.export.card import StudySummary

        folder = source.run_dir if source.adapter_name == "adapter" else source.adapter_dir
        if not (self.data_root / "studies.db").is_file():
            return None, None
        for study in self.list_studies():
            if Path(study["run_dir"]).resolve() != folder.resolve() or not study["votes"]:
                continue
            stats = self.study_statistics(study["id"])
            overall = stats["overall"]
            low, high = overall["win"]["ci"]
            baseline = study["sides"]["baseline"]
            return StudySummary(
                name=study["name"], win_rate=overall["win"]["rate"], low=low, high=high, n_votes=stats["n_votes"],
                n_raters=len(stats["by_rater"]), n_items=study["questions"], ties=overall["tie"]["count"],
                base_wins=overall["loss"]["count"], baseline_run=baseline["run_id"],
                baseline_step=baseline["step"]), stats
        return None, None

    def _study_summary(self, source: ExportSource):
        """The `StudySummary` of the newest study of this adapter with votes, else None."""
        return self._latest_study(source)[0]

    def _planned(self, source: ExportSource) -> tuple[dict | None, dict | None]:
        """The data check summary and the memory/time estimate of the run's config, as plain values (None each when
        the dataset or the model's shape cannot be had)."""
        config = source.config
        try:
            plan = self.plan(config)
        except EngineError:
            return None, None
        dataset = None
        if plan.dataset is not None:
            report = plan.dataset.report
            summary = {k: v for k, v in plan.dataset.summary.to_dict().items() if k != "token_lengths"}
            dataset = {**summary, "errors": len(report.errors), "warnings": len(report.warnings)}
        estimate = None
        if plan.memory is not None:
            estimate = {"memory_gb": round(plan.memory.total / 1e9, 2), "verdict": plan.memory.verdict,
                        "seconds": None}
            if plan.time is not None and dataset is not None:
                estimate["seconds"] = round(plan.time.seconds_per_epoch * _epochs_run(config, dataset["rows"]), 1)
        return dataset, estimate

    def _sample_answers(self, source: ExportSource) -> list[tuple[str, str, str]]:
        """(prompt, base answer, adapter answer) for the first held-out prompts (else the first training prompts),
        generated in one batch; empty when the run has no prompts to take."""
        prompts = _sample_prompts(source)
        if not prompts:
            return []
        folder = source.run_dir if source.adapter_name == "adapter" else source.adapter_dir
        pairs = self.chat.compare_batch(folder, [[{"role": "user", "content": p}] for p in prompts], SAMPLE_PARAMS)
        return [(prompt, pair.base, pair.adapter) for prompt, pair in zip(prompts, pairs)]

    @contextmanager
    def _holding_device(self) -> Iterator[None]:
        """Hold the device lock while an export loads a model: refused (`busy_generating`) while a run trains or
        the chat generates."""
        self._refuse_while_training()
        if not self.chat.lock.acquire("export"):
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        try:
            yield
        finally:
            self.chat.lock.release()


def _epochs_run(config, rows: int) -> float:
    """How many epochs the config trains: its epochs, or the fraction `max_steps` makes of them."""
    if config.max_steps <= 0:
        return config.num_train_epochs
    batch = global_batch(config)["total"]
    steps_per_epoch = max(1, math.ceil(rows * (1 - config.eval_split) / batch))
    return config.max_steps / steps_per_epoch


def _sample_prompts(source: ExportSource) -> list[str]:
    """The first SAMPLE_PROMPTS held-out prompts of the run, else the first prompts of its dataset."""
    try:
        return [q["prompt"] for q in held_out_questions(source.run_dir)][:SAMPLE_PROMPTS]
    except EngineError:
        pass
    from engine.data import reading

    try:
        examples = reading.load_config_dataset(source.config).examples
    except (EngineError, OSError):
        return []
    users = [[m["content"] for m in example["prompt"] if m["role"] == "user"] for example in examples]
    return [turns[-1] for turns in users if turns][:SAMPLE_PROMPTS]
