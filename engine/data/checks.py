"""Dataset-level quality checks and a summary, run on a DatasetReport from `engine.data.reading.load_report`.

Row checks in `engine.data.reading` and `engine.data.convert` decide whether a row can be used; these
checks look across rows (near duplicates, conflicting answers, eval overlap), at lengths in tokens as
training will see them, and at content that is legal but likely a mistake (very short answers, control
characters). All findings are warnings: training can proceed. No model is loaded; counting tokens needs
only the tokenizer.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError

from engine.data.tools import template_kwargs, tools_issue
from engine.errors import Issue

MAX_ROW_ISSUES = 20         # per-row dataset_row_too_long issues listed before only the total counts
MIN_ROWS = 20               # fewer usable rows than this: the model barely changes
MIN_ROW_EPOCHS = 50         # rows x epochs below this: the same
SHORT_CJK_CHARS = 5         # a CJK answer shorter than this (after stripping) is "very short"
SHORT_WORDS = 2             # any other answer with fewer words than this is "very short"
ZH_SHARE = 0.3              # share of Han characters among letters from which text counts as Chinese
EN_SHARE = 0.5              # share of Latin letters among letters from which text counts as English
LANGUAGE_SAMPLE = 300       # characters of each message looked at to tell an example's language

QUESTION_FIELD = {"alpaca": "instruction", "prompt_completion": "prompt", "sharegpt": "conversations",
                  "messages": "messages", "text": "text"}
ANSWER_FIELD = {"alpaca": "output", "prompt_completion": "completion", "sharegpt": "conversations",
                "messages": "messages", "text": "text"}

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass
class DatasetSummary:
    """Figures about the usable examples of one dataset, for the Dataset tab and `validate --json`."""

    rows: int                                  # usable examples
    format: str | None
    languages: dict[str, int]                  # examples by main language: "zh", "en", "other"
    token_lengths: list[int] = field(default_factory=list)  # templated length per example (empty without tokenizer)
    max_length: int | None = None
    truncated_rows: int = 0                    # examples longer than max_length
    tokens_per_epoch: int = 0                  # sum of min(length, max_length) (0 without tokenizer)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain values, plus the longest and mean token length (None without token counts)."""
        data = asdict(self)
        lengths = self.token_lengths
        data["longest"] = max(lengths) if lengths else None
        data["mean_length"] = round(sum(lengths) / len(lengths), 1) if lengths else None
        return data


def check_dataset(report, tokenizer=None, max_length: int | None = None, num_train_epochs: float | None = None,
                  eval_examples: list[dict[str, Any]] | None = None) -> tuple[list[Issue], DatasetSummary]:
    """Warnings about `report`'s usable examples and their summary.

    With a tokenizer, lengths are counted on the chat-templated text exactly as training renders it;
    with `max_length` too, rows that will be cut are reported. `num_train_epochs` defaults to the
    TrainConfig default for the too-few-rows advice. `eval_examples` (TRL form: the eval split drawn
    from `report.examples`, or a separate eval set) are checked for overlap with the training part.
    """
    examples, rows = report.examples, report.example_rows
    fmt = report.format
    issues: list[Issue] = []
    languages = {"zh": 0, "en": 0, "other": 0}
    for example in examples:
        languages[detect_language(_language_sample(example))] += 1

    epochs = num_train_epochs
    if epochs is None:
        from engine.config import TrainConfig

        epochs = TrainConfig().num_train_epochs
    epochs = int(epochs) if float(epochs).is_integer() else epochs
    if examples and (len(examples) < MIN_ROWS or len(examples) * epochs < MIN_ROW_EPOCHS):
        issues.append(Issue("warning", "dataset_too_few_rows", params={"rows": len(examples), "epochs": epochs}))

    summary = DatasetSummary(rows=len(examples), format=fmt, languages=languages, max_length=max_length)
    if tokenizer is not None and examples:
        unsupported = tools_issue(examples, tokenizer, getattr(tokenizer, "name_or_path", "") or "?")
        issues += [unsupported] if unsupported else []
        try:
            summary.token_lengths = token_lengths(examples, tokenizer)
        except TemplateError as exc:  # a template that cannot render these rows (e.g. tool turns) counts nothing
            issues.append(Issue("warning", "dataset_template_no_count", params={
                "model": getattr(tokenizer, "name_or_path", "") or "?", "reason": str(exc)[:200]}))
        issues += _length_issues(summary, rows)

    if eval_examples:
        overlap = eval_overlap(examples, eval_examples)
        if overlap:
            issues.append(Issue("warning", "dataset_eval_overlap", params={"count": overlap}))

    first = _first_copies(examples)  # exact repeats are load_report's dataset_duplicate: not checked again
    row_issues = _duplicate_issues(examples, rows, fmt, first)
    row_issues += _content_issues(examples, rows, fmt, first)
    row_issues.sort(key=lambda i: (i.row, i.code))
    return issues + row_issues, summary


def token_lengths(examples: list[dict[str, Any]], tokenizer) -> list[int]:
    """Token count of each example as training sees it: chat-templated prompt+completion, or text+EOS.

    Rendering is one batched `apply_chat_template(..., tokenize=False)` (what TRL tokenizes for
    prompt+completion); counting is one batched call of the fast tokenizer, the bulk of the time.
    """
    if not examples:
        return []
    template = None if getattr(tokenizer, "chat_template", None) else _fallback_template()
    eos = getattr(tokenizer, "eos_token", None) or ""
    texts: list[str] = [""] * len(examples)
    conversations, positions = [], []
    for i, example in enumerate(examples):
        if example.get("tools"):  # tools differ by example: rendered one by one
            texts[i] = tokenizer.apply_chat_template([*example["prompt"], *example["completion"]], tokenize=False,
                                                     chat_template=template, **template_kwargs(example))
        elif "prompt" in example:
            conversations.append([*example["prompt"], *example["completion"]])
            positions.append(i)
        else:
            text = example.get("text", "")
            texts[i] = text if not eos or text.endswith(eos) else text + eos  # TRL appends EOS to text rows
    if conversations:
        rendered = tokenizer.apply_chat_template(conversations, tokenize=False, chat_template=template)
        for i, text in zip(positions, rendered):
            texts[i] = text
    unique = list(dict.fromkeys(texts))  # exact duplicates are counted once
    ids = tokenizer(unique, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    length = {text: len(i) for text, i in zip(unique, ids)}
    return [length[text] for text in texts]


def eval_overlap(examples: list[dict[str, Any]], eval_examples: list[dict[str, Any]]) -> int:
    """How many eval examples also appear (same prompt and completion) among the training examples.

    When the eval examples were drawn from `examples` (the eval split: every one of them found there),
    the training part is `examples` less those drawn, so only duplicates left on the training side
    count; an eval set from elsewhere is compared with all of `examples`.
    """
    train = Counter(_exact_key(e) for e in examples)
    held = [_exact_key(e) for e in eval_examples]
    drawn = Counter(held)
    if all(train[key] >= count for key, count in drawn.items()):
        train -= drawn
    return sum(1 for key in held if train[key] > 0)


def detect_language(text: str, sample: int | None = None) -> str:
    """"zh", "en" or "other" by the share of Han characters (then Latin letters) among all letters.

    Judged on the first `sample` characters when given; plain ASCII text with a letter is English.
    """
    if sample:
        text = text[:sample]
    if text.isascii():
        return "en" if _ASCII_LETTER.search(text) else "other"
    letters = len(_LETTER.findall(text))
    if not letters:
        return "other"
    if len(_HAN.findall(text)) / letters >= ZH_SHARE:
        return "zh"
    if len(_LATIN.findall(text)) / letters >= EN_SHARE:
        return "en"
    return "other"


def normalise(text: str) -> str:
    """`text` with case, width, whitespace and punctuation differences removed (for comparing questions)."""
    return _strip_pattern().sub("", unicodedata.normalize("NFKC", text).casefold())


def is_very_short(answer: str) -> bool:
    """Fewer than 5 characters for Chinese text, fewer than 2 words for other text."""
    answer = answer.strip()
    if len(answer) >= SHORT_CJK_CHARS and len(answer.split(maxsplit=SHORT_WORDS - 1)) >= SHORT_WORDS:
        return False  # long enough by either measure
    if detect_language(answer, 200) == "zh":
        return len(answer) < SHORT_CJK_CHARS
    return len(answer.split()) < SHORT_WORDS


# ---- helpers -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _strip_pattern() -> re.Pattern:
    """Whitespace and every punctuation character of the Basic Multilingual Plane."""
    punct = "".join(chr(c) for c in range(min(sys.maxunicode, 0xFFFF) + 1)
                    if unicodedata.category(chr(c)).startswith("P"))
    return re.compile(r"[\s" + re.escape(punct) + "]+")


def _fallback_template() -> str:
    from engine.models.loader import FALLBACK_CHAT_TEMPLATE

    return FALLBACK_CHAT_TEMPLATE


def _language_sample(example: dict[str, Any]) -> str:
    """The start of each message of an example, enough to tell its language."""
    if "text" in example and "prompt" not in example:
        return example["text"][:LANGUAGE_SAMPLE]
    return "\n".join(m["content"][:LANGUAGE_SAMPLE] for m in (*example["prompt"], *example["completion"]))


def _exact_key(example: dict[str, Any]) -> tuple:
    """Hashable identity of an example: its messages' roles and contents (or its text)."""
    if example.get("prompt") is None:
        return (example.get("text"),)
    return tuple((m["role"], m["content"]) for m in (*example["prompt"], *(example.get("completion") or ())))


def _question(example: dict[str, Any]) -> str:
    """The normalised question: the whole prompt, roles included (a text row's whole text)."""
    if "prompt" not in example:
        return normalise(example.get("text", ""))
    return "\x1e".join(m["role"] + "\x1f" + normalise(m["content"]) for m in example["prompt"])


def _answer(example: dict[str, Any]) -> str:
    return "".join(m["content"] for m in example.get("completion", ()))


def _first_copies(examples: list[dict[str, Any]]) -> list[bool]:
    """False for each example that exactly repeats an earlier one."""
    seen: set[tuple] = set()
    first = []
    for example in examples:
        key = _exact_key(example)
        first.append(key not in seen)
        seen.add(key)
    return first


def _duplicate_issues(examples: list[dict[str, Any]], rows: list[int], fmt: str | None,
                      first: list[bool]) -> list[Issue]:
    """Near duplicates and conflicting answers among examples that are not exact repeats.

    Answers are normalised only for questions asked more than once.
    """
    issues: list[Issue] = []
    seen: dict[str, list] = {}  # question -> [first row, its example, {normalised answer: first row} or None]
    for example, row, is_first in zip(examples, rows, first):
        if not is_first:
            continue
        question = _question(example)
        entry = seen.get(question)
        if entry is None:
            seen[question] = [row, example, None]
            continue
        first_row, first_example, answers = entry
        if answers is None:
            answers = entry[2] = {normalise(_answer(first_example)): first_row}
        answer = normalise(_answer(example))
        if answer in answers:
            issues.append(Issue("warning", "dataset_near_duplicate", row=row, field=QUESTION_FIELD.get(fmt),
                                params={"first": answers[answer]}))
        else:
            answers[answer] = row
            issues.append(Issue("warning", "dataset_conflicting_answers", row=row, field=ANSWER_FIELD.get(fmt),
                                params={"first": first_row}))
    return issues


def _content_issues(examples: list[dict[str, Any]], rows: list[int], fmt: str | None,
                    first: list[bool]) -> list[Issue]:
    """Very short answers and control characters, in examples that are not exact repeats."""
    issues: list[Issue] = []
    for example, row, is_first in zip(examples, rows, first):
        if not is_first:
            continue
        if "prompt" in example:
            if is_very_short(_answer(example)):
                issues.append(Issue("warning", "dataset_short_answer", row=row, field=ANSWER_FIELD.get(fmt)))
            messages = [*example["prompt"], *example["completion"]]
        else:
            messages = [{"role": "text", "content": example.get("text", "")}]
        flagged: set[str] = set()
        for message in messages:
            if message["role"] in flagged or not _CONTROL.search(message["content"]):
                continue
            flagged.add(message["role"])
            found = _CONTROL.findall(message["content"])
            chars = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(found))
            issues.append(Issue("warning", "dataset_control_chars", row=row, field=message["role"],
                                params={"chars": chars, "count": len(found)}))
    return issues


def _length_issues(summary: DatasetSummary, rows: list[int]) -> list[Issue]:
    """Fill the truncation figures of `summary`; one total issue plus the first few long rows."""
    lengths, limit = summary.token_lengths, summary.max_length
    if not limit:
        summary.tokens_per_epoch = sum(lengths)
        return []
    summary.tokens_per_epoch = sum(min(n, limit) for n in lengths)
    long_rows = [(row, n) for row, n in zip(rows, lengths) if n > limit]
    summary.truncated_rows = len(long_rows)
    if not long_rows:
        return []
    excess = sum(n - limit for _row, n in long_rows)
    issues = [Issue("warning", "dataset_too_long", params={
        "count": len(long_rows), "max_length": limit, "longest": max(n for _row, n in long_rows),
        "mean_excess": round(excess / len(long_rows))})]
    issues += [Issue("warning", "dataset_row_too_long", row=row, params={"length": n, "max_length": limit})
               for row, n in long_rows[:MAX_ROW_ISSUES]]
    return issues
