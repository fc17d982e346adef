"""Engine errors: a stable code, its parameters and a hint code, worded later by the caller."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any


@dataclass
class EngineError(Exception):
    """A failure the user can act on; `code` and `hint` are keys of `engine.locales`."""

    code: str
    params: dict[str, Any] = dc_field(default_factory=dict)
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.code)

    def __str__(self) -> str:
        from engine.locales import render_error

        return render_error(self, "en")


@dataclass(frozen=True)
class Issue:
    """One finding of a validator: severity is "error" or "warning"; row is 1-based or None."""

    severity: str
    code: str
    row: int | None = None
    field: str | None = None
    params: dict[str, Any] = dc_field(default_factory=dict)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """The issue as plain values (code, row, field) with its message worded in `lang`; severity is left out."""
        from engine.locales import render

        return {
            "code": self.code,
            "row": self.row,
            "field": self.field,
            "message": render(self.code, {**self.params, "row": self.row, "field": self.field}, lang),
        }


def errors_of(issues: list[Issue]) -> list[Issue]:
    """The issues of severity "error" (those that block a run)."""
    return [i for i in issues if i.severity == "error"]


def warnings_of(issues: list[Issue]) -> list[Issue]:
    """The issues of severity "warning" (advice only)."""
    return [i for i in issues if i.severity == "warning"]
