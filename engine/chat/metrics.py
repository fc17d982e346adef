"""Automatic companion metrics beside the human verdict: eval loss and perplexity of the two sides,
and ROUGE-L / BLEU of answers against reference answers, with Chinese-aware tokenisation.

Chinese has no spaces, so text is split into single Han characters plus runs of letters or digits
("退货怎么办 in 3 days" -> 退 货 怎 么 办 in 3 days), the usual character-level treatment for Chinese.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z0-9]+(?:'[A-Za-z]+)?")
MAX_EVAL_ROWS = 50  # perplexity is measured on at most this many eval rows (CPU friendly)


def tokens(text: str) -> list[str]:
    """Lower-cased tokens: single Han characters and runs of letters or digits."""
    return TOKEN.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 from the longest common subsequence of tokens."""
    a, b = tokens(candidate), tokens(reference)
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU-4 with add-one smoothing of the higher n-gram precisions and the brevity penalty."""
    a, b = tokens(candidate), tokens(reference)
    if not a or not b:
        return 0.0
    logs = []
    for n in range(1, max_n + 1):
        grams = Counter(tuple(a[i:i + n]) for i in range(len(a) - n + 1))
        ref = Counter(tuple(b[i:i + n]) for i in range(len(b) - n + 1))
        overlap, total = sum((grams & ref).values()), max(sum(grams.values()), 0)
        if n == 1 and overlap == 0:
            return 0.0
        smooth = 0 if n == 1 else 1
        logs.append(math.log((overlap + smooth) / (total + smooth)) if total + smooth else 0.0)
    brevity = 1.0 if len(a) > len(b) else math.exp(1 - len(b) / len(a))
    return brevity * math.exp(sum(logs) / max_n)


def reference_scores(pairs: list[tuple[str, str, str]]) -> dict[str, dict[str, float]]:
    """Mean ROUGE-L and BLEU of base and adapter answers; `pairs` holds (base, adapter, reference)."""
    usable = [p for p in pairs if p[2] and p[2].strip()]
    result = {}
    for index, side in ((0, "base"), (1, "adapter")):
        result[side] = {"rouge_l": sum(rouge_l(p[index], p[2]) for p in usable) / len(usable) if usable else None,
                        "bleu": sum(bleu(p[index], p[2]) for p in usable) / len(usable) if usable else None,
                        "n": len(usable)}
    return result


def eval_perplexity(chat_model, run_dir: str | Path, baseline: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Mean loss on the answer tokens and its perplexity, baseline ("base": `baseline`, default the base model) vs
    candidate ("adapter": `run_dir`), on the candidate run's eval split (the rows training held out), from the chat
    model's one copy of the weights."""
    from engine.config import TrainConfig
    from engine.data import splits
    from engine.training import adapters

    run_folder, _adapter = adapters.locate(run_dir)  # run_dir may also be one of the run's checkpoints
    config = TrainConfig.from_yaml(run_folder / "config.yaml")
    examples, held_out = splits.held_out_rows(config)
    examples = (held_out if held_out is not None else examples)[:MAX_EVAL_ROWS]
    losses = chat_model.answer_losses(run_dir, examples, config.max_length, baseline)
    return {side: {"loss": value, "perplexity": math.exp(value), "rows": len(examples)}
            for side, value in losses.items()}
