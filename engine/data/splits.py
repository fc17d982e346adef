"""Train/eval splits of a dataset's examples and mixing in a second dataset."""
from __future__ import annotations

from typing import Any

from engine.data.convert import held_out_count, mix_count
from engine.data.reading import ReadOptions, load_config_dataset, load_report
from engine.errors import EngineError


def split_examples(examples: list[dict[str, Any]], eval_split: float, seed: int, eval_rows: int = 0):
    """A `datasets` train set and an eval set (None when nothing is held out), shuffled with `seed`.

    `eval_rows` > 0 holds out that many rows; otherwise `eval_split` is the share held out.
    """
    dataset = examples_dataset(examples)
    held_out = held_out_count(len(examples), eval_split, eval_rows)
    if held_out == 0:
        return dataset, None
    if len(examples) - held_out < 1:
        raise EngineError("dataset_too_small_for_eval", {"rows": len(examples)}, hint="hint_fix_config")
    parts = dataset.train_test_split(test_size=held_out, seed=seed)
    return parts["train"], parts["test"]


def examples_dataset(examples: list[dict[str, Any]], with_tools: bool = False):
    """A `datasets` Dataset of TRL examples. Once any example defines tools (or `with_tools` asks for the column
    and every example is a conversation), every example gets the `tools` key (None: no tools) and each message
    is kept as JSON, so tool calls keep exactly their own arguments (Arrow would otherwise merge every row's
    argument names into each call); other examples' column types are inferred."""
    from datasets import Dataset, Features, Json, List, Value

    tools = any("tools" in example for example in examples)
    if not (tools or (with_tools and all("prompt" in example for example in examples))):
        return Dataset.from_list(examples)
    features = Features({"prompt": List(Json()), "completion": List(Json()), "tools": Value("string")})
    return Dataset.from_list([{**example, "tools": example.get("tools")} for example in examples], features=features)


def held_out_rows(config) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(every usable example of `config`'s dataset, the rows its run holds out for eval or None)."""
    examples = load_config_dataset(config).examples
    _train, held_out = split_examples(examples, config.eval_split, config.seed, config.eval_rows)
    return examples, (list(held_out) if held_out is not None else None)


def mix_in(train, extra: list[dict[str, Any]], ratio: float, seed: int):
    """`train` plus round(len(train) * ratio) rows drawn from `extra` with `seed`, shuffled together.

    Mixing general data into a narrow task set is the guides' advice against forgetting; the eval
    set is left alone so it keeps measuring the task itself.
    """
    import random

    from datasets import concatenate_datasets

    count = mix_count(len(train), len(extra), ratio)
    if count == 0:
        return train
    drawn = random.Random(seed).sample(extra, count)
    extra_set = examples_dataset(drawn, with_tools="tools" in train.column_names)
    if set(extra_set.column_names) != set(train.column_names):
        raise EngineError("dataset_mix_mismatch", hint="hint_fix_config")
    return concatenate_datasets([train, extra_set.cast(train.features)]).shuffle(seed=seed)


def build_splits(config, examples: list[dict[str, Any]]):
    """Train and eval sets for a run: split the main rows, then mix in the second dataset if chosen."""
    train, evaluation = split_examples(examples, config.eval_split, config.seed, config.eval_rows)
    if config.mix_dataset_path and config.mix_ratio > 0:
        extra = load_report(config.mix_dataset_path, options=ReadOptions(
            sft_on_chosen=config.sft_on_chosen, model_name_or_path=config.model_name_or_path,
            max_length=config.max_length))
        if not extra.usable:
            first = extra.errors[0]
            raise EngineError(first.code, {**first.params, "row": first.row, "field": first.field},
                              hint="hint_fix_rows")
        train = mix_in(train, extra.examples, config.mix_ratio, config.seed)
    return train, evaluation
