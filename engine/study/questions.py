"""Question sets for blind studies: reading them from a file, and spotting answers that give a model away."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from engine.data.reading import read_rows
from engine.errors import EngineError

PROMPT_COLUMNS = ("prompt", "question")
DOMAIN_COLUMNS = ("domain", "category")
REFERENCE_COLUMNS = ("reference", "answer")

IDENTITY_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"smol\s*lm",
    r"hugging\s*face",
    r"\bI(?: am|'m|’m) (?:an? )?(?:AI|artificial intelligence)(?: (?:language )?model| assistant| chatbot)?\b",
    r"\bas an AI(?: language)? model\b",
    r"\b(?:large )?language model (?:trained|developed|created|made) by\b",
    r"我是[^。！？!?\n]{0,30}?(?:AI|人工智能|语言模型|大模型)",
    r"\bQwen|通义千问|千问",
    r"\bLlama\b|\bLLaMA",
    r"\bChatGPT\b|\bGPT-?[34]",
    r"\bOpenAI\b",
    r"\bAnthropic\b",
    r"\bMistral AI\b",
    r"\bDeepSeek\b|深度求索",
    r"\bChatGLM\b|智谱",
    r"文心一言|\bERNIE Bot\b",
)]

def identity_flags(text: str) -> list[str]:
    """The passages of `text` that reveal which model wrote it (model or company names, "I am an AI ...")."""
    return [m.group(0) for pattern in IDENTITY_PATTERNS for m in pattern.finditer(text or "")]


def reveals_identity(text: str) -> bool:
    """Whether `text` gives away which model wrote it (see `identity_flags`)."""
    return bool(identity_flags(text))


def text_or_none(value: Any) -> str | None:
    """A cell as text, None when empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    """Questions from a CSV/TSV/JSONL/JSON/Parquet/XLSX file: a prompt (or question) column, optional
    domain (or category) and reference (or answer). Raises EngineError naming the row for bad rows."""
    path = Path(path)
    issues: list = []
    rows = read_rows(path, issues)
    if issues:
        first = issues[0]
        raise EngineError(first.code, {**first.params, "row": first.row}, hint="hint_fix_rows")
    if not rows:
        raise EngineError("study_no_questions")
    columns = list(dict.fromkeys(str(key) for _n, row in rows for key in row))
    lower = {c.strip().lower(): c for c in reversed(columns)}

    def pick(names: tuple[str, ...]) -> str | None:
        return next((lower[n] for n in names if n in lower), None)

    prompt_col, domain_col, reference_col = pick(PROMPT_COLUMNS), pick(DOMAIN_COLUMNS), pick(REFERENCE_COLUMNS)
    if prompt_col is None:
        raise EngineError("study_questions_no_prompt", {"columns": ", ".join(columns)})
    questions = []
    for number, row in rows:
        for column in (prompt_col, domain_col, reference_col):
            if column is not None and isinstance(row.get(column), (list, dict)):
                raise EngineError("study_question_not_text", {"row": number, "field": column}, hint="hint_fix_rows")
        prompt = text_or_none(row.get(prompt_col))
        if prompt is None:
            raise EngineError("study_question_empty", {"row": number}, hint="hint_fix_rows")
        questions.append({"prompt": prompt,
                          "domain": text_or_none(row.get(domain_col)) if domain_col else None,
                          "reference": text_or_none(row.get(reference_col)) if reference_col else None})
    return questions


def held_out_questions(run_dir: str | Path) -> list[dict[str, Any]]:
    """The questions of a run's eval split (the rows training held out): each row's last user turn as
    the prompt and its trained answer as the reference. Raises `study_no_questions` when the run held
    out no rows."""
    from engine.config import TrainConfig
    from engine.data import splits

    _examples, held_out = splits.held_out_rows(TrainConfig.from_yaml(Path(run_dir) / "config.yaml"))
    questions = []
    for example in held_out or []:
        users = [m["content"] for m in example["prompt"] if m["role"] == "user"]
        if users:
            questions.append({"prompt": users[-1], "domain": None,
                              "reference": text_or_none(example["completion"][-1]["content"])})
    if not questions:
        raise EngineError("study_no_held_out", {"path": str(run_dir)}, hint="hint_upload_questions")
    return questions


def write_questions(path: str | Path, questions: list[dict[str, Any]]) -> Path:
    """Save questions as a JSONL file `load_questions` reads back (written atomically)."""
    import json

    from engine.system.files import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
    return Path(path)
