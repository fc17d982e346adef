"""Dataset files: read, detect the format, check every row, convert to TRL's conversational form.

Every supported format becomes TRL's conversational prompt/completion rows
(`{"prompt": [messages...], "completion": [{"role": "assistant", ...}]}`), so the model's own chat
template is applied the same way in training and in chat, and the loss covers the answer only.
Plain `text` rows stay language-modelling rows. Problems come back as `Issue`s naming row and field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from engine.data import convert
from engine.data.mapping import ColumnMapping, propose_mapping
from engine.errors import EngineError, Issue, errors_of, warnings_of

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx")


@dataclass
class DatasetReport:
    """The outcome of reading and checking one dataset file."""

    path: str
    format: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)  # the number a user sees for each row
    examples: list[dict[str, Any]] = field(default_factory=list)
    example_rows: list[int] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    mapping: ColumnMapping = field(default_factory=lambda: ColumnMapping(None))

    @property
    def columns(self) -> list[str]:
        """The file's column names, in first-seen order."""
        return list(dict.fromkeys(key for row in self.rows[:200] for key in row))

    @property
    def errors(self) -> list[Issue]:
        """The issues that leave a row out (or stop the file)."""
        return errors_of(self.issues)

    @property
    def warnings(self) -> list[Issue]:
        """The issues that advise (the row is still used)."""
        return warnings_of(self.issues)

    @property
    def usable(self) -> bool:
        """True when training can proceed: at least one good row (bad rows are left out)."""
        return bool(self.examples)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """The `validate --json` contract: format, rows, errors, warnings."""
        return {"format": self.format, "rows": len(self.rows),
                "errors": [i.to_dict(lang) for i in self.errors],
                "warnings": [i.to_dict(lang) for i in self.warnings]}


def load_report(path: str | Path, mapping: ColumnMapping | None = None) -> DatasetReport:
    """Read `path`, map its columns (proposed unless given), check every row. Never raises for bad content."""
    path = Path(path)
    report = DatasetReport(path=str(path), format=None)
    try:
        numbered = read_rows(path, report.issues)
    except EngineError as exc:
        report.issues.append(Issue("error", exc.code, params=exc.params))
        return report
    report.row_numbers = [number for number, _row in numbered]
    report.rows = [row for _number, row in numbered]
    if not report.rows:
        if not report.errors:
            report.issues.append(Issue("error", "dataset_empty"))
        return report
    report.mapping = mapping or propose_mapping(report.columns)
    report.format = report.mapping.format
    if report.format is None or report.mapping.missing():
        report.format = None
        report.issues.append(Issue("error", "dataset_unknown_format", params={"columns": ", ".join(report.columns)}))
        return report
    seen: dict[str, int] = {}
    for number, row in numbered:
        try:
            example = to_example(report.mapping.apply(row), report.format, number)
        except RowProblem as problem:
            report.issues.append(replace(problem.issue, field=report.mapping.column_of(problem.issue.field)))
            continue
        key = json.dumps(example, ensure_ascii=False, sort_keys=True)
        if key in seen:
            report.issues.append(Issue("warning", "dataset_duplicate", row=number, params={"first": seen[key]}))
        seen.setdefault(key, number)
        report.examples.append(example)
        report.example_rows.append(number)
    if not report.examples:
        report.issues.append(Issue("error", "dataset_nothing_usable"))
    return report


def read_rows(path: Path, issues: list[Issue]) -> list[tuple[int, dict[str, Any]]]:
    """(row number, row) pairs of a JSONL/JSON/CSV/TSV/Parquet file.

    Row numbers are what the user finds in the file: the line number in JSONL, the position in a
    JSON list, the data row (header excluded) in CSV/TSV/Parquet. Unreadable JSONL lines become issues.
    """
    if not path.is_file():
        raise EngineError("dataset_not_found", {"path": str(path)}, hint="hint_check_path")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise EngineError("dataset_bad_type", {"suffix": suffix or path.name})
    try:
        if suffix == ".jsonl":
            return convert.jsonl_rows(path.read_text(encoding="utf-8-sig"), partial(_bad_json_line, issues))
        if suffix == ".json":
            return list(enumerate(convert.json_document_rows(path.read_text(encoding="utf-8-sig")), start=1))
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(enumerate(pq.read_table(path).to_pylist(), start=1))
        import pandas as pd

        if suffix == ".xlsx":
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
            return list(enumerate(frame.to_dict(orient="records"), start=1))

        try:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                                keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.EmptyDataError:
            return []
        return list(enumerate(frame.to_dict(orient="records"), start=1))
    except (UnicodeDecodeError, ValueError, OSError, ImportError) as exc:
        raise EngineError("dataset_unreadable", {"path": str(path), "detail": str(exc).splitlines()[0][:200]}) from None


def _bad_json_line(issues: list[Issue], number: int, detail: str) -> None:
    """Record a JSONL line that is not JSON as an error issue on its line number."""
    issues.append(Issue("error", "dataset_bad_json", row=number, params={"detail": detail}))


def detect_format(rows: list[dict[str, Any]]) -> str | None:
    """The format the column names suggest (see `engine.data.mapping.propose_mapping`)."""
    return propose_mapping(list(dict.fromkeys(key for row in rows[:200] for key in row))).format


class RowProblem(Exception):
    """A row that cannot become a training example, as the Issue that names its row and field."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.code)
        self.issue = issue


def to_example(row: dict[str, Any], fmt: str, number: int) -> dict[str, Any]:
    """One row as a TRL example (`engine.data.convert.to_example`); raises RowProblem naming row `number`."""
    try:
        return convert.to_example(row, fmt)
    except convert.BadRow as bad:
        raise RowProblem(Issue("error", bad.code, row=number, field=bad.field, params=bad.params)) from None
