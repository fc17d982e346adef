"""Column mapping: which of a file's columns play which part of a training example.

`propose_mapping` guesses the format and the columns from their names (English and Chinese
synonyms, e.g. question/answer -> prompt/completion); the user can change the proposal, and
`ColumnMapping.apply` renames a row's columns to the canonical fields the converters expect.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Canonical fields of each format: (name, required).
FORMAT_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "alpaca": (("instruction", True), ("input", False), ("output", True), ("system", False), ("history", False)),
    "sharegpt": (("conversations", True), ("system", False)),
    "messages": (("messages", True),),
    "prompt_completion": (("prompt", True), ("completion", True)),
    "text": (("text", True),),
}
FORMATS = tuple(FORMAT_FIELDS)
LIST_FIELDS = {"conversations", "messages", "history"}

# Alternative column names, lower-case; the canonical name itself always matches first.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "instruction": ("instructions", "指令"),
    "input": ("context", "输入", "上下文"),
    "output": ("response", "输出"),
    "system": ("system_prompt", "系统提示"),
    "history": ("历史",),
    "conversations": ("conversation", "dialog", "dialogue", "对话"),
    "messages": ("chat",),
    "prompt": ("question", "query", "q", "ask", "user", "问题", "提问", "问"),
    "completion": ("answer", "reply", "a", "assistant", "target", "回答", "答案", "答复", "答"),
    "text": ("content", "document", "body", "文本", "内容"),
}
# Detection order: the most specific shapes first.
DETECTION_ORDER = ("sharegpt", "messages", "alpaca", "prompt_completion", "text")


@dataclass(frozen=True)
class ColumnMapping:
    """A format and, for each of its canonical fields, the file column holding it."""

    format: str | None
    columns: dict[str, str] = field(default_factory=dict)

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with canonical field names; JSON text in list fields (CSV/Excel cells) is parsed."""
        out = {}
        for canonical, column in self.columns.items():
            value = row.get(column)
            if canonical in LIST_FIELDS and isinstance(value, str) and value.strip().startswith("["):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            out[canonical] = value
        return out

    def column_of(self, canonical: str | None) -> str | None:
        """The user's column name for a canonical field (for messages that name the column)."""
        if canonical is None:
            return None
        head, bracket, rest = canonical.partition("[")
        return self.columns.get(head, head) + bracket + rest

    def missing(self) -> list[str]:
        """Required fields of the format that no column provides."""
        if self.format is None:
            return []
        return [name for name, required in FORMAT_FIELDS[self.format] if required and name not in self.columns]


def _match(field_name: str, columns: list[str]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for candidate in (field_name,) + SYNONYMS.get(field_name, ()):
        if candidate in lowered:
            return lowered[candidate]
    return None


def mapping_for(fmt: str, columns: list[str]) -> ColumnMapping:
    """The best columns for format `fmt` (required fields may be missing; see `missing()`)."""
    found = {name: column for name, _required in FORMAT_FIELDS[fmt] if (column := _match(name, columns))}
    return ColumnMapping(fmt, found)


def propose_mapping(columns: list[str]) -> ColumnMapping:
    """The first format whose required fields all match a column; ColumnMapping(None) if none does."""
    for fmt in DETECTION_ORDER:
        candidate = mapping_for(fmt, columns)
        if not candidate.missing():
            return candidate
    return ColumnMapping(None)
