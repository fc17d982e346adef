"""Column mapping: which of a file's columns play which part of a training example.

`propose_mapping` guesses the format and the columns from their names (the tables and rules live in
`engine.data.convert`); the user can change the proposal, and `ColumnMapping.apply` renames a row's
columns to the canonical fields the converters expect.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.data import convert
from engine.data.convert import FORMAT_FIELDS, FORMATS

__all__ = ["FORMAT_FIELDS", "FORMATS", "ColumnMapping", "propose_mapping"]


@dataclass(frozen=True)
class ColumnMapping:
    """A format and, for each of its canonical fields, the file column holding it."""

    format: str | None
    columns: dict[str, str] = field(default_factory=dict)

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with canonical field names; JSON text in list fields (CSV/Excel cells) is parsed."""
        return convert.rename_columns(row, self.columns)

    def column_of(self, canonical: str | None) -> str | None:
        """The user's column name for a canonical field (for messages that name the column)."""
        if canonical is None:
            return None
        head, bracket, rest = canonical.partition("[")
        return self.columns.get(head, head) + bracket + rest

    def missing(self) -> list[str]:
        """Required fields of the format that no column provides."""
        return convert.missing_fields(self.format, self.columns)


def propose_mapping(columns: list[str]) -> ColumnMapping:
    """The first format whose required fields all match a column; ColumnMapping(None) if none does."""
    return ColumnMapping(*convert.detect_columns(columns))
