"""What the model sees: an example rendered with the model's chat template, marked token by token.

Mirrors TRL's SFT tokenization for conversational prompt/completion rows: the prompt rendered with
the generation prompt, the full conversation rendered without it, the loss on the tokens after their
common prefix, cut at `max_length`. Plain text rows are trained on entirely (TRL appends EOS).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.tools import template_kwargs

CONTEXT, TRAINED, CUT = "context", "trained", "cut"


@dataclass(frozen=True)
class TrainingView:
    """Token ids of one example and, per token, whether it is context, trained on, or cut off."""

    input_ids: list[int]
    kinds: list[str]

    @property
    def trained_tokens(self) -> int:
        """How many tokens the loss is computed on."""
        return self.kinds.count(TRAINED)

    @property
    def cut_tokens(self) -> int:
        """How many tokens lie beyond `max_length` and are cut off."""
        return self.kinds.count(CUT)


def training_view(example: dict, tokenizer, max_length: int) -> TrainingView:
    """Tokenize `example` as TRL's SFT does and mark each token context, trained, or cut (beyond `max_length`)."""
    if "prompt" in example:
        extra = template_kwargs(example)
        prompt = _ids(tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=True,
                                                    **extra))
        full = _ids(tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True, **extra))
        start = _common_prefix(prompt, full)
        kinds = [CONTEXT] * start + [TRAINED] * (len(full) - start)
    else:
        full = tokenizer(example["text"] + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
        kinds = [TRAINED] * len(full)
    kinds = kinds[:max_length] + [CUT] * max(0, len(full) - max_length)
    return TrainingView(list(full), kinds)


def segments(view: TrainingView, tokenizer) -> list[tuple[str, str]]:
    """(text, kind) runs for display; each run is decoded whole so multi-byte characters stay intact."""
    runs: list[tuple[str, str]] = []
    start = 0
    for index in range(1, len(view.kinds) + 1):
        if index == len(view.kinds) or view.kinds[index] != view.kinds[start]:
            runs.append((tokenizer.decode(view.input_ids[start:index]), view.kinds[start]))
            start = index
    return runs


def _ids(rendered) -> list[int]:
    """apply_chat_template returns ids, or a mapping with input_ids, depending on the version."""
    return list(rendered["input_ids"] if hasattr(rendered, "keys") else rendered)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
