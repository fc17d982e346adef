"""Dataset files: read, detect the format, check every row, convert to TRL's conversational form.

Every supported format becomes TRL's conversational prompt/completion rows
(`{"prompt": [messages...], "completion": [{"role": "assistant", ...}]}`), so the model's own chat
template is applied the same way in training and in chat, and the loss covers the answer only.
Plain `text` rows stay language-modelling rows. Problems come back as `Issue`s naming row and field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.errors import EngineError, Issue, errors_of, warnings_of
from engine.data.mapping import ColumnMapping, propose_mapping

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx")
ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system"}


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
        return errors_of(self.issues)

    @property
    def warnings(self) -> list[Issue]:
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
            return _read_jsonl(path, issues)
        if suffix == ".json":
            return list(enumerate(_json_rows(path.read_text(encoding="utf-8-sig")), start=1))
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


def _json_rows(text: str) -> list[dict[str, Any]]:
    """Rows of a JSON document: a list of rows, one row object, or an object wrapping a list of rows."""
    if not text.strip():
        return []
    data = json.loads(text)
    if isinstance(data, dict):
        if detect_format([data]) is None:
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        else:
            data = [data]
    if not isinstance(data, list):
        raise ValueError("expected a list of rows")
    return [row if isinstance(row, dict) else {"text": row} for row in data]


def _read_jsonl(path: Path, issues: list[Issue]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.append(Issue("error", "dataset_bad_json", row=number, params={"detail": exc.msg}))
            continue
        rows.append((number, row if isinstance(row, dict) else {"text": row}))
    return rows


def detect_format(rows: list[dict[str, Any]]) -> str | None:
    """The format the column names suggest (see `engine.mapping.propose_mapping`)."""
    return propose_mapping(list(dict.fromkeys(key for row in rows[:200] for key in row))).format


class RowProblem(Exception):
    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.code)
        self.issue = issue


def _text(row: dict[str, Any], name: str, number: int, required: bool = True) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, float) and value != value):
        value = ""
    if not isinstance(value, str):
        raise RowProblem(Issue("error", "dataset_wrong_type", row=number, field=name,
                               params={"expected": "text"}))
    if required and not value.strip():
        raise RowProblem(Issue("error", "dataset_missing_field", row=number, field=name))
    return value


def to_example(row: dict[str, Any], fmt: str, number: int) -> dict[str, Any]:
    """One row as a TRL example; raises RowProblem naming the field that is wrong."""
    if fmt == "text":
        return {"text": _text(row, "text", number)}
    if fmt == "prompt_completion":
        return {"prompt": [{"role": "user", "content": _text(row, "prompt", number)}],
                "completion": [{"role": "assistant", "content": _text(row, "completion", number)}]}
    if fmt == "alpaca":
        return _alpaca(row, number)
    key = "conversations" if fmt == "sharegpt" else "messages"
    return _conversation(row, key, number)


def _alpaca(row: dict[str, Any], number: int) -> dict[str, Any]:
    instruction = _text(row, "instruction", number)
    extra = _text(row, "input", number, required=False)
    answer = _text(row, "output", number)
    messages = []
    system = _text(row, "system", number, required=False)
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowProblem(Issue("error", "dataset_wrong_type", row=number, field="history",
                               params={"expected": "a list of [question, answer] pairs"}))
    for pair in history:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise RowProblem(Issue("error", "dataset_wrong_type", row=number, field="history",
                                   params={"expected": "a list of [question, answer] pairs"}))
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    question = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages.append({"role": "user", "content": question})
    return {"prompt": messages, "completion": [{"role": "assistant", "content": answer}]}


def _conversation(row: dict[str, Any], key: str, number: int) -> dict[str, Any]:
    turns = row.get(key)
    if not isinstance(turns, list) or not turns:
        raise RowProblem(Issue("error", "dataset_missing_field", row=number, field=key))
    messages = []
    for turn_number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise RowProblem(Issue("error", "dataset_wrong_type", row=number, field=key,
                                   params={"expected": "a list of turns with role and content"}))
        raw_role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise RowProblem(Issue("error", "dataset_bad_role", row=number, field=key,
                                   params={"turn": turn_number, "role": raw_role}))
        if not isinstance(content, str) or not content.strip():
            raise RowProblem(Issue("error", "dataset_missing_field", row=number, field=f"{key}[{turn_number}]"))
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise RowProblem(Issue("error", "dataset_no_assistant", row=number, field=key))
    if messages[-1]["role"] != "assistant":
        raise RowProblem(Issue("error", "dataset_last_not_assistant", row=number, field=key))
    _check_role_order(messages, key, number)
    system = row.get("system")
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _check_role_order(messages: list[dict[str, str]], key: str, number: int) -> None:
    """After an optional first system message, turns alternate user, assistant, user, ..."""
    start = 1 if messages[0]["role"] == "system" else 0
    for index, message in enumerate(messages[start:]):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise RowProblem(Issue("error", "dataset_role_order", row=number, field=key,
                                   params={"turn": start + index + 1, "role": message["role"], "expected": expected}))
