"""Advice: the fine-tuning guides' classic mistakes, spotted in a TrainConfig before a run.

Every finding is a warning (training can proceed) naming the TrainConfig field to change; the wording,
in English and 中文, is in `engine.locales` under the `advice_` codes. Dataset figures are optional:
checks that need them are skipped when they are None. `cuda=None` asks `engine.system.device` (only when a
check needs to know). Turning gradient checkpointing on when it is not needed is deliberately not
a warning: it only costs some speed.
"""
from __future__ import annotations

import math

from engine.config import TrainConfig
from engine.data import convert
from engine.errors import Issue

# learning rate for LoRA: the guides' range is about 1e-4 to 2e-4
LR_HIGH = 1e-3               # above: the loss oscillates or diverges
LR_LOW = 1e-5                # below: the adapter barely learns in a normal number of steps
# lora_alpha / lora_r: the usual ratio is 1 to 2
ALPHA_RATIO_LOW = 0.5        # below: the adapter's updates are scaled down so far it learns little
ALPHA_RATIO_HIGH = 4.0       # above: the updates are scaled up so far training gets unstable
# passes over the training rows (epochs, or max_steps x batch x accumulation / rows)
SMALL_DATASET_ROWS = 500     # fewer training rows than this count as a small dataset ...
MAX_PASSES_SMALL = 5         # ... on which more passes than this tend to memorise the rows
MAX_PASSES = 10              # more passes than this overfit on any dataset size
SUGGESTED_PASSES = 3         # what the warning suggests instead
# LoRA rank
MAX_RANK_FEW_ROWS = 64       # a rank above this ...
FEW_ROWS_FOR_RANK = 1000     # ... on fewer rows than this overfits and costs memory for nothing
# max_length against the dataset's token lengths
UNUSED_LENGTH_FACTOR = 2     # max_length above longest x this ...
UNUSED_LENGTH_MARGIN = 256   # ... and above longest + this is far more than the data needs
LENGTH_ROUNDING = 64         # the suggested max_length is the longest row rounded up to this
TRUNCATED_SHARE = 0.05       # more than this share of rows cut off by max_length


def advise(config: TrainConfig, rows: int | None = None, longest_tokens: int | None = None,
           truncated_rows: int | None = None, cuda: bool | None = None) -> list[Issue]:
    """Warnings about settings that commonly spoil a LoRA run.

    `rows`: usable examples in the dataset; `longest_tokens`: the longest example in tokens as
    training sees it; `truncated_rows`: examples longer than max_length (see `checks.DatasetSummary`).
    """
    issues: list[Issue] = []
    issues += _learning_rate(config)
    issues += _alpha_ratio(config)
    if rows:
        issues += _passes(config, rows)
        if config.lora_r > MAX_RANK_FEW_ROWS and rows < FEW_ROWS_FOR_RANK:
            issues.append(Issue("warning", "advice_rank_high_few_rows", field="lora_r",
                                params={"r": config.lora_r, "rows": rows, "max_rank": MAX_RANK_FEW_ROWS,
                                        "few_rows": FEW_ROWS_FOR_RANK}))
    if longest_tokens:
        if (config.max_length > UNUSED_LENGTH_FACTOR * longest_tokens
                and config.max_length > longest_tokens + UNUSED_LENGTH_MARGIN):
            suggested = max(32, math.ceil(longest_tokens / LENGTH_ROUNDING) * LENGTH_ROUNDING)
            issues.append(Issue("warning", "advice_max_length_unused", field="max_length",
                                params={"max_length": config.max_length, "longest": longest_tokens,
                                        "suggested": suggested}))
    if rows and truncated_rows and truncated_rows > TRUNCATED_SHARE * rows:
        issues.append(Issue("warning", "advice_many_truncated", field="max_length",
                            params={"count": truncated_rows, "rows": rows,
                                    "share": round(100 * truncated_rows / rows),
                                    "limit": round(100 * TRUNCATED_SHARE), "max_length": config.max_length,
                                    "longest": longest_tokens if longest_tokens else "?"}))
    issues += _cpu_only(config, cuda)
    return issues


def _learning_rate(config: TrainConfig) -> list[Issue]:
    if config.method == "dpo":  # DPO's far lower range is checked by the config itself (config_dpo_lr_high)
        return []
    if config.learning_rate > LR_HIGH:
        return [Issue("warning", "advice_lr_high", field="learning_rate",
                      params={"value": f"{config.learning_rate:g}", "limit": f"{LR_HIGH:g}"})]
    if config.learning_rate < LR_LOW:
        return [Issue("warning", "advice_lr_low", field="learning_rate",
                      params={"value": f"{config.learning_rate:g}", "limit": f"{LR_LOW:g}"})]
    return []


def _alpha_ratio(config: TrainConfig) -> list[Issue]:
    if config.lora_r < 1:
        return []
    ratio = config.lora_alpha / config.lora_r
    params = {"alpha": config.lora_alpha, "r": config.lora_r, "ratio": f"{ratio:.3g}",
              "low": config.lora_r, "high": 2 * config.lora_r}
    if ratio < ALPHA_RATIO_LOW:
        return [Issue("warning", "advice_alpha_low", field="lora_alpha", params=params)]
    if ratio > ALPHA_RATIO_HIGH:
        return [Issue("warning", "advice_alpha_high", field="lora_alpha", params=params)]
    return []


def training_rows(config: TrainConfig, rows: int) -> int:
    """Rows left for training after the eval split (the rule of `engine.data.convert.held_out_count`)."""
    held_out = convert.held_out_count(rows, config.eval_split, config.eval_rows)
    return rows - held_out if rows - held_out >= 1 else rows


def passes(config: TrainConfig, rows: int) -> float:
    """How many times training goes over its rows: epochs, or what max_steps amounts to."""
    if config.max_steps > 0:
        per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps
        return config.max_steps * per_step / training_rows(config, rows)
    return config.num_train_epochs


def _passes(config: TrainConfig, rows: int) -> list[Issue]:
    train_rows = training_rows(config, rows)
    count = passes(config, rows)
    small = train_rows < SMALL_DATASET_ROWS
    if not (count > MAX_PASSES or (small and count > MAX_PASSES_SMALL)):
        return []
    if config.max_steps > 0:
        per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps
        name, suggested = "max_steps", math.ceil(SUGGESTED_PASSES * train_rows / per_step)
    else:
        name, suggested = "num_train_epochs", SUGGESTED_PASSES
    return [Issue("warning", "advice_overfit", field=name,
                  params={"rows": train_rows, "passes": f"{count:.3g}",
                          "max_passes": MAX_PASSES_SMALL if small else MAX_PASSES,
                          "setting": name, "suggested": suggested})]


def _cpu_only(config: TrainConfig, cuda: bool | None) -> list[Issue]:
    needs_cuda = (config.load_in_4bit or config.load_in_8bit or config.bf16 or config.fp16
                  or config.optim in ("paged_adamw_8bit", "adamw_8bit"))
    if not needs_cuda:
        return []
    if cuda is None:
        from engine.system.device import cuda_available

        cuda = cuda_available()
    if cuda:
        return []
    issues = []
    if config.load_in_4bit:
        issues.append(Issue("warning", "advice_4bit_without_cuda", field="load_in_4bit"))
    if config.load_in_8bit:
        issues.append(Issue("warning", "advice_8bit_without_cuda", field="load_in_8bit"))
    if config.optim in ("paged_adamw_8bit", "adamw_8bit"):
        issues.append(Issue("warning", "advice_optim_without_cuda", field="optim", params={"optim": config.optim}))
    for name in ("bf16", "fp16"):
        if getattr(config, name):
            issues.append(Issue("warning", "advice_precision_without_cuda", field=name, params={"precision": name}))
    return issues
