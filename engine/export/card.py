"""The model card of an adapter: the facts a run leaves (curve, eval loss, data languages, study summary) and the
Hugging Face `README.md` written from them (YAML metadata, then what it is, how to use it, settings, results)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from engine.errors import EngineError
from engine.export.source import ExportSource
from engine.models import loader
from engine.training.events import Event, LogEvent

TEMPLATES = Path(__file__).resolve().parent / "templates"
BUNDLED_LICENSE = "apache-2.0"  # SmolLM2-135M-Instruct's licence on its Hugging Face model card
CARD_LANGUAGES = ("en", "zh")  # the languages the data check tells apart ("other" is not a language code)
TAGS = ("lora", "trl", "sft")
SETTINGS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_rslora", "use_dora",
            "learning_rate", "lr_scheduler_type", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "max_length", "load_in_4bit", "seed")


@dataclass
class StudySummary:
    """The headline of a blind study of the adapter against its baseline: the adapter's decisive win rate and its
    95% Wilson interval, how many votes, raters and items, the ties and the baseline's wins (`base_wins`); the
    baseline is the base model when `baseline_run` is None, else that run's adapter (its checkpoint at
    `baseline_step` when one is named)."""

    name: str
    win_rate: float
    low: float
    high: float
    n_votes: int
    n_raters: int = 0
    n_items: int = 0
    ties: int = 0
    base_wins: int = 0
    baseline_run: str | None = None
    baseline_step: int | None = None


@dataclass
class CardFacts:
    """What the card says beyond the config: the data's languages (ISO codes) and name, the base's licence, the
    last eval loss, the study summary and the loss curve (points {"step", "loss"?, "eval_loss"?})."""

    languages: list[str]
    dataset_name: str
    license: str | None = None
    eval_loss: float | None = None
    study: StudySummary | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def perplexity(self) -> float | None:
        """exp(eval loss), the usual reading of a language model's eval loss; None without one."""
        return math.exp(self.eval_loss) if self.eval_loss is not None else None

    @property
    def final_train_loss(self) -> tuple[int, float] | None:
        """(step, loss) of the last training-loss point; None when the run logged none."""
        points = [point for point in self.curve if "loss" in point]
        return (points[-1]["step"], points[-1]["loss"]) if points else None


def loss_curve(events: list[Event]) -> list[dict[str, Any]]:
    """The run's log points with a finite loss or eval loss: {"step", "loss"?, "eval_loss"?}, oldest first."""
    curve = []
    for event in events:
        if not isinstance(event, LogEvent):
            continue
        point = {name: value for name, value in (("loss", event.loss), ("eval_loss", event.eval_loss))
                 if value is not None and math.isfinite(value)}
        if point:
            curve.append({"step": event.step, **point})
    return curve


def dataset_languages(dataset_path: str) -> list[str]:
    """The ISO codes of the languages the run's data is written in (by script: Han characters → zh, else en),
    most rows first; empty when the file is gone or unreadable."""
    from engine.data.checks import check_dataset
    from engine.data.reading import load_report

    if not dataset_path or not Path(dataset_path).is_file():
        return []
    _issues, summary = check_dataset(load_report(dataset_path))
    counts = {lang: summary.languages.get(lang, 0) for lang in CARD_LANGUAGES}
    return [lang for lang in sorted(counts, key=lambda lang: -counts[lang]) if counts[lang]]


def base_license(source: ExportSource) -> str | None:
    """The base model's licence: the bundled model's, or the `license` of the base folder's own model card
    (README.md front matter); None when unknown."""
    if loader.is_bundled(source.config.model_name_or_path):
        return BUNDLED_LICENSE
    try:
        readme = source.base_folder() / "README.md"
    except EngineError:
        return None
    metadata = front_matter(readme.read_text(encoding="utf-8")) if readme.is_file() else {}
    value = metadata.get("license")
    return str(value) if value else None


def front_matter(markdown: str) -> dict[str, Any]:
    """The YAML metadata block at the top of a model card (between the first two `---` lines); {} when absent or
    not a mapping."""
    if not markdown.startswith("---"):
        return {}
    block = markdown.split("\n---", 1)[0].removeprefix("---")
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def card_facts(source: ExportSource, events: list[Event], study: StudySummary | None) -> CardFacts:
    """The card's facts for `source` from the run's events and its dataset file, with `study` when given."""
    curve = loss_curve(events)
    evals = [point["eval_loss"] for point in curve if "eval_loss" in point]
    dataset = source.config.dataset_path
    return CardFacts(languages=dataset_languages(dataset), dataset_name=Path(dataset).stem if dataset else "",
                     license=base_license(source), eval_loss=evals[-1] if evals else None, study=study, curve=curve)


def card_metadata(source: ExportSource, facts: CardFacts) -> dict[str, Any]:
    """The model card's YAML metadata (Hugging Face's keys: base_model, library_name, pipeline_tag, tags,
    language, datasets, license), leaving out what is unknown; `base_model` names a Hub model, so a base given
    as a local folder is left out of it (the card's text names the folder)."""
    base = source.base_model
    metadata: dict[str, Any] = {"base_model": base} if is_hub_id(base) else {}
    metadata.update({"library_name": "peft", "pipeline_tag": "text-generation",
                     "tags": [*TAGS, *(["qlora"] if source.used_qlora else [])]})
    if facts.languages:
        metadata["language"] = list(facts.languages)
    if facts.dataset_name:
        metadata["datasets"] = [facts.dataset_name]
    if facts.license:
        metadata["license"] = facts.license
    return metadata


def model_card(source: ExportSource, facts: CardFacts) -> str:
    """The adapter's README.md: Hugging Face model card metadata, then what it is, how to use it, its training
    settings and its results (final and eval loss, perplexity, the blind study with its 95% interval)."""
    config, base = source.config, source.base_model
    hub_base = is_hub_id(base)
    final = facts.final_train_loss
    settings = [(name, _setting(getattr(config, name))) for name in SETTINGS]
    return _template("model_card.md").render(
        front_matter=yaml.safe_dump(card_metadata(source, facts), sort_keys=False, allow_unicode=True),
        title=f"{source.run_id} — LoRA adapter for {Path(base).name if not hub_base else base}",
        base_model=base, base_link=f"https://huggingface.co/{base}" if hub_base else base, hub_base=hub_base,
        dataset_name=facts.dataset_name or "-", qlora=source.used_qlora, run_id=source.run_id,
        adapter_name=source.adapter_name, settings=settings, train_loss=final[1] if final else None,
        last_step=final[0] if final else None, eval_loss=facts.eval_loss, perplexity=facts.perplexity,
        study=facts.study)


def is_hub_id(name: str) -> bool:
    """Whether the base model is named by its Hugging Face id (`owner/name`), not a folder on this machine."""
    return not Path(name).expanduser().exists() and not Path(name).is_absolute()


def _setting(value: Any) -> str:
    """A config value as the card's table shows it (lists joined, pipes escaped for Markdown)."""
    text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text.replace("|", "\\|")


@cache
def _template(name: str):
    """A Jinja2 template of this package's `templates/` folder (read once)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                                     keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return environment.get_template(name)
