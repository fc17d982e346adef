"""TrainConfig: the single definition of a training run, shared by forms, presets, CLI and YAML.

Field names follow TRL's `SFTConfig`/`ModelConfig` and PEFT's `LoraConfig`. Each field's metadata
(group, bounds, step, choices, whether the simple form shows it) drives the UI form and the validator.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.data.encoding import DELIMITERS, ENCODINGS
from engine.errors import EngineError, Issue

BUNDLED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

GROUPS = ("model", "data", "lora", "training", "evaluation")
METHODS = ("sft", "dpo")
# TRL 1.16 DPOConfig.loss_type names (one loss per run; `sft` alone would not use the rejected answers)
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm")
# the reference of a DPO run: the starting adapter kept frozen (a second copy of its weights only), or the base
DPO_REFERENCES = ("frozen_adapter", "base")
DPO_LR_HIGH = 1e-5  # a DPO learning rate above this is an SFT-like one (DPO wants about 5e-7 to 5e-6)


def _field(default: Any, group: str, *, min: float | None = None, max: float | None = None,
           step: float | None = None, choices: tuple | None = None, simple: bool = False,
           log: bool = False) -> Any:
    meta = {"group": group, "min": min, "max": max, "step": step, "choices": choices,
            "simple": simple, "log": log}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run. Frozen: derive variants with `replace(**changes)`."""

    # model and quantization
    model_name_or_path: str = _field(BUNDLED_MODEL_ID, "model", simple=True)
    load_in_4bit: bool = _field(False, "model", simple=True)
    load_in_8bit: bool = _field(False, "model")
    bnb_4bit_quant_type: str = _field("nf4", "model", choices=("nf4", "fp4"))
    use_bnb_nested_quant: bool = _field(True, "model")
    dtype: str = _field("auto", "model", choices=("auto", "float32", "bfloat16", "float16"))
    # data
    dataset_path: str = _field("", "data", simple=True)
    eval_split: float = _field(0.1, "data", min=0.0, max=0.5, step=0.01)
    eval_rows: int = _field(0, "data", min=0, max=100_000, step=1)
    mix_dataset_path: str = _field("", "data")
    mix_ratio: float = _field(0.0, "data", min=0.0, max=1.0, step=0.05)
    max_length: int = _field(512, "data", min=32, max=32768, step=32, simple=True)
    dataset_encoding: str = _field("auto", "data", choices=ENCODINGS)
    dataset_delimiter: str = _field("auto", "data", choices=DELIMITERS)
    sft_on_chosen: bool = _field(False, "data")
    # LoRA
    lora_r: int = _field(16, "lora", min=1, max=256, step=1, simple=True)
    lora_alpha: int = _field(32, "lora", min=1, max=1024, step=1)
    lora_dropout: float = _field(0.05, "lora", min=0.0, max=0.5, step=0.01)
    lora_target_modules: tuple[str, ...] = _field(("all-linear",), "lora")
    use_rslora: bool = _field(False, "lora")
    use_dora: bool = _field(False, "lora")
    # training
    learning_rate: float = _field(2e-4, "training", min=1e-7, max=1e-2, simple=True, log=True)
    num_train_epochs: float = _field(3.0, "training", min=0.1, max=100.0, step=0.5, simple=True)
    max_steps: int = _field(-1, "training", min=-1, max=1_000_000, step=1)
    per_device_train_batch_size: int = _field(4, "training", min=1, max=512, step=1, simple=True)
    gradient_accumulation_steps: int = _field(1, "training", min=1, max=512, step=1)
    num_gpus: int = _field(1, "training", min=1, max=64, step=1)  # processes (DDP through accelerate)
    lr_scheduler_type: str = _field("cosine", "training",
                                    choices=("cosine", "linear", "constant", "constant_with_warmup"))
    warmup_steps: float = _field(0.03, "training", min=0.0, max=10_000, step=0.01)
    weight_decay: float = _field(0.0, "training", min=0.0, max=1.0, step=0.01)
    optim: str = _field("adamw_torch", "training",
                        choices=("adamw_torch", "paged_adamw_8bit", "adamw_8bit", "adafactor", "sgd"))
    gradient_checkpointing: bool = _field(False, "training")
    train_sampling_strategy: str = _field("group_by_length", "training", choices=("group_by_length", "random"))
    bf16: bool = _field(False, "training")
    fp16: bool = _field(False, "training")
    seed: int = _field(42, "training", min=0, max=2**31 - 1, step=1)
    logging_steps: int = _field(1, "training", min=1, max=10_000, step=1)
    # preference tuning (DPO): continue an SFT adapter on chosen/rejected pairs
    method: str = _field("sft", "training", choices=METHODS)
    init_adapter: str = _field("", "training")  # a run folder or checkpoint holding the SFT adapter to continue
    beta: float = _field(0.1, "training", min=0.001, max=10.0, step=0.01)
    loss_type: str = _field("sigmoid", "training", choices=DPO_LOSS_TYPES)
    dpo_reference: str = _field("frozen_adapter", "training", choices=DPO_REFERENCES)
    # evaluation and saving
    eval_strategy: str = _field("epoch", "evaluation", choices=("no", "steps", "epoch"))
    eval_steps: int = _field(50, "evaluation", min=1, max=1_000_000, step=1)
    save_steps: int = _field(50, "evaluation", min=1, max=1_000_000, step=1)
    save_total_limit: int = _field(2, "evaluation", min=1, max=100, step=1)
    load_best_model_at_end: bool = _field(False, "evaluation")
    early_stopping_patience: int = _field(0, "evaluation", min=0, max=100, step=1)

    # ---- construction -------------------------------------------------------------------
    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with `changes` applied (values coerced to the field types; unknown keys refused)."""
        return dataclasses.replace(self, **_coerce_all(changes))

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: "TrainConfig | None" = None) -> "TrainConfig":
        """Build from a mapping over `base` (default: the defaults); unknown keys raise EngineError."""
        return (base or cls()).replace(**data)

    @classmethod
    def from_yaml(cls, path: str | Path, base: "TrainConfig | None" = None) -> "TrainConfig":
        """Build from a YAML file over `base` (default: the defaults); a missing or bad file raises EngineError."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise EngineError("config_file_missing", {"path": str(path)}) from None
        except yaml.YAMLError as exc:
            raise EngineError("config_file_invalid", {"path": str(path), "detail": str(exc).splitlines()[0]}) from None
        if not isinstance(data, dict):
            raise EngineError("config_file_invalid", {"path": str(path), "detail": "not a mapping"})
        return cls.from_dict(data, base)

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain value (tuples as lists), in definition order."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        """The config as YAML in definition order (what a run's config.yaml holds)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def diff(self, other: "TrainConfig | None" = None) -> dict[str, Any]:
        """Fields whose value differs from `other` (default: the defaults), as plain values."""
        ref = (other or TrainConfig()).to_dict()
        return {k: v for k, v in self.to_dict().items() if ref[k] != v}

    # ---- validation ---------------------------------------------------------------------
    def validate(self) -> list[Issue]:
        """Every problem of this config as Issues (errors block a run, warnings advise)."""
        issues: list[Issue] = []
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                issues.append(Issue("error", "config_choice", field=f.name,
                                    params={"value": value, "choices": ", ".join(map(str, meta["choices"]))}))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                lo, hi = meta.get("min"), meta.get("max")
                if value != value or (lo is not None and value < lo) or (hi is not None and value > hi):
                    issues.append(Issue("error", "config_range", field=f.name,
                                        params={"value": value, "min": lo, "max": hi}))
        if not self.dataset_path:
            issues.append(Issue("error", "config_no_dataset", field="dataset_path"))
        elif not Path(self.dataset_path).exists():
            issues.append(Issue("error", "dataset_not_found", field="dataset_path",
                                params={"path": self.dataset_path}))
        if self.mix_dataset_path and not Path(self.mix_dataset_path).exists():
            issues.append(Issue("error", "dataset_not_found", field="mix_dataset_path",
                                params={"path": self.mix_dataset_path}))
        if self.mix_ratio > 0 and not self.mix_dataset_path:
            issues.append(Issue("warning", "config_mix_without_dataset", field="mix_ratio"))
        if self.load_in_4bit and self.load_in_8bit:
            issues.append(Issue("error", "config_both_quant", field="load_in_8bit"))
        if self.bf16 and self.fp16:
            issues.append(Issue("error", "config_both_precisions", field="fp16"))
        if not self.lora_target_modules:
            issues.append(Issue("error", "config_no_target_modules", field="lora_target_modules"))
        elif "all-linear" in self.lora_target_modules and len(self.lora_target_modules) > 1:
            issues.append(Issue("error", "config_all_linear_mixed", field="lora_target_modules"))
        if (self.load_best_model_at_end or self.early_stopping_patience) and self.eval_strategy == "no":
            issues.append(Issue("error", "config_best_needs_eval", field="eval_strategy"))
        if self.eval_strategy != "no" and self.eval_split == 0 and self.eval_rows == 0:
            issues.append(Issue("warning", "config_eval_without_split", field="eval_split"))
        if self.num_gpus > 1:
            issues.extend(self._process_issues())
        if self.method == "dpo":
            issues.extend(self._preference_issues())
        return issues

    def _preference_issues(self) -> list[Issue]:
        """Problems of a DPO run: the SFT adapter it continues must exist (that one is set is checked at the start,
        so a DPO preset validates before an adapter is picked), it wants a far lower learning rate than SFT, and it
        trains on preference pairs alone (no second dataset mixed in)."""
        issues = []
        if self.init_adapter and not Path(self.init_adapter).exists():
            issues.append(Issue("error", "config_dpo_adapter_missing", field="init_adapter",
                                params={"path": self.init_adapter}))
        if self.learning_rate > DPO_LR_HIGH:
            issues.append(Issue("warning", "config_dpo_lr_high", field="learning_rate",
                                params={"value": f"{self.learning_rate:g}", "limit": f"{DPO_LR_HIGH:g}"}))
        if self.mix_dataset_path and self.mix_ratio > 0:
            issues.append(Issue("error", "config_dpo_no_mix", field="mix_dataset_path"))
        return issues

    def _process_issues(self) -> list[Issue]:
        """Problems of a run over `num_gpus` > 1 processes: more than the CUDA devices present is an error;
        without CUDA the processes share the CPU (the path the CPU DDP test takes), which is slower, not faster."""
        from engine.planning.estimate import cuda_device_count

        present = cuda_device_count()
        if present and self.num_gpus > present:
            return [Issue("error", "config_num_gpus_too_many", field="num_gpus",
                          params={"value": self.num_gpus, "present": present})]
        if not present:
            return [Issue("warning", "config_num_gpus_on_cpu", field="num_gpus", params={"value": self.num_gpus})]
        return []


# ---- field helpers (used by forms, the CLI's --set and presets) -----------------------------
FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


def field_kind(name: str) -> type:
    """The Python type of a field: bool, int, float, str or tuple."""
    default = FIELDS[name].default
    if default is dataclasses.MISSING:
        return tuple
    return type(default)


def coerce(name: str, value: Any) -> Any:
    """Turn `value` (often text from a form, YAML or `--set`) into the field's type, or raise."""
    if name not in FIELDS:
        close = difflib.get_close_matches(name, FIELDS, n=1)
        raise EngineError("config_unknown_key", {"key": name, "suggestion": close[0] if close else "-"})
    kind = field_kind(name)
    try:
        if kind is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is int:
            number = float(value)
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise EngineError("config_type", {"key": name, "value": value, "type": kind.__name__}) from None


def _coerce_all(changes: dict[str, Any]) -> dict[str, Any]:
    return {name: coerce(name, value) for name, value in changes.items()}


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`["lora_r=8", "learning_rate=1e-4"]` -> typed dict; malformed pairs raise EngineError."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise EngineError("config_bad_assignment", {"text": pair})
        out[key.strip()] = coerce(key.strip(), value.strip())
    return out
