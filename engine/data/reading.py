"""Dataset files: read, detect the format, check every row, convert to TRL's conversational form.

Every supported format becomes TRL's conversational prompt/completion rows
(`{"prompt": [messages...], "completion": [{"role": "assistant", ...}]}`), so the model's own chat
template is applied the same way in training and in chat, and the loss covers the answer only.
Plain `text` rows stay language-modelling rows, and a plain-text file (.txt, .md) becomes such rows cut into
chunks of up to max_length tokens (`engine.data.plain_text`). Text files are decoded in the encoding detected
(or chosen) and CSV cells split at the delimiter sniffed (or chosen) (`engine.data.encoding`); the report says
which. Preference files (chosen/rejected) are their own kind: their pairs are kept in TRL's preference form,
and SFT trains on the chosen answers only when asked. Problems come back as `Issue`s naming row and field.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from engine.config import BUNDLED_MODEL_ID
from engine.data import convert, plain_text
from engine.data import encoding as codec
from engine.data.mapping import ColumnMapping, propose_mapping
from engine.errors import EngineError, Issue, errors_of, warnings_of

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx", *plain_text.SUFFIXES)
TEXT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", *plain_text.SUFFIXES)  # decoded with a detected encoding
LISTED_ROWS = 20  # rows named in a warning that counts rows


@dataclass(frozen=True)
class ReadOptions:
    """How a file is read: its encoding and CSV delimiter ("auto" detects), SFT on a preference file's chosen
    answers, the model and max length that cut a plain-text file into chunks, and whether the run learns from
    preferences (DPO: a preference file is what it wants, not a problem)."""

    encoding: str = codec.AUTO
    delimiter: str = codec.AUTO
    sft_on_chosen: bool = False
    model_name_or_path: str = BUNDLED_MODEL_ID
    max_length: int = 512
    for_preferences: bool = False

    @classmethod
    def of(cls, config) -> ReadOptions:
        """The options a TrainConfig sets, so a run reads its file exactly as it was checked."""
        return cls(config.dataset_encoding, config.dataset_delimiter, config.sft_on_chosen,
                   config.model_name_or_path, config.max_length, for_preferences=config.method == "dpo")


@dataclass
class FileRows:
    """A file's (row number, row) pairs and the encoding and delimiter they were read with (None: not used)."""

    rows: list[tuple[int, dict[str, Any]]]
    encoding: str | None = None
    delimiter: str | None = None


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
    encoding: str | None = None      # the text encoding the file was read in (None for Parquet/Excel)
    delimiter: str | None = None     # the CSV/TSV cell delimiter used (None for other files)
    chunked: bool = False            # a plain-text file cut into chunks of up to max_length tokens
    preference_examples: list[dict[str, Any]] = field(default_factory=list)  # TRL preference form, for DPO
    preference_rows: list[int] = field(default_factory=list)
    chunk_preview: plain_text.ChunkPreview | None = None  # a chunked file's chunk count, sizes and first chunks

    @property
    def kind(self) -> str:
        """What the data trains: "preference" (chosen/rejected pairs), "text" (continued pre-training) or "sft"."""
        if self.format == "preference":
            return "preference"
        return "text" if self.format == "text" else "sft"

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
                "warnings": [i.to_dict(lang) for i in self.warnings],
                "kind": self.kind, "encoding": self.encoding, "delimiter": codec.delimiter_name(self.delimiter)}


def load_config_dataset(config) -> DatasetReport:
    """The report of a run's dataset, read as its config says (encoding, delimiter, chunking, chosen answers)."""
    return load_report(config.dataset_path, options=ReadOptions.of(config))


def load_report(path: str | Path, mapping: ColumnMapping | None = None,
                options: ReadOptions | None = None) -> DatasetReport:
    """Read `path`, map its columns (proposed unless given), check every row. Never raises for bad content."""
    path, options = Path(path), options or ReadOptions()
    report = DatasetReport(path=str(path), format=None)
    try:
        loaded = read_file(path, report.issues, options)
    except EngineError as exc:
        report.issues.append(Issue("error", exc.code, params=exc.params))
        return report
    numbered, report.encoding, report.delimiter = loaded.rows, loaded.encoding, loaded.delimiter
    if codec.is_guess(report.encoding):
        report.issues.append(Issue("warning", "dataset_guessed_encoding", params={"encoding": report.encoding}))
    if path.suffix.lower() in plain_text.SUFFIXES and numbered:
        try:
            numbered = _chunked(report, numbered, options)
        except (EngineError, OSError, ValueError) as exc:
            reason = exc.code if isinstance(exc, EngineError) else first_line(exc)
            report.issues.append(Issue("error", "dataset_no_tokenizer", params={
                "model": options.model_name_or_path, "reason": reason}))
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
    _check_rows(report, numbered, options)
    return report


def _check_rows(report: DatasetReport, numbered: list[tuple[int, dict[str, Any]]], options: ReadOptions) -> None:
    """Turn each row into an example (and a preference pair for preference data), recording the problems."""
    seen: dict[str, int] = {}
    labelled_bad: list[int] = []
    keep = report.kind != "preference" or options.sft_on_chosen
    for number, row in numbered:
        canonical = report.mapping.apply(row)
        try:
            example = to_example(canonical, report.format, number)
        except RowProblem as problem:
            if problem.issue.code == "dataset_labelled_bad":
                labelled_bad.append(number)
            else:
                report.issues.append(replace(problem.issue, field=report.mapping.column_of(problem.issue.field)))
            continue
        if report.kind == "preference":
            report.preference_examples.append(convert.preference_pair(canonical))
            report.preference_rows.append(number)
        key = json.dumps(example, ensure_ascii=False, sort_keys=True)
        if key in seen and keep:
            report.issues.append(Issue("warning", "dataset_duplicate", row=number, params={"first": seen[key]}))
        seen.setdefault(key, number)
        if keep:
            report.examples.append(example)
            report.example_rows.append(number)
    if labelled_bad:
        report.issues.append(Issue("warning", "dataset_labelled_bad_rows", field=report.mapping.column_of("label"),
                                   params={"count": len(labelled_bad), "rows": _listed(labelled_bad)}))
    if not keep and report.preference_examples:
        if not options.for_preferences:
            pairs = len(report.preference_examples)
            report.issues.insert(0, Issue("error", "dataset_is_preference", params={"pairs": pairs}))
    elif not report.examples:
        report.issues.append(Issue("error", "dataset_nothing_usable"))


def _listed(rows: list[int]) -> str:
    """Row numbers as a list to read: the first LISTED_ROWS, then how many more."""
    shown = ", ".join(str(row) for row in rows[:LISTED_ROWS])
    return shown + (f" (+{len(rows) - LISTED_ROWS})" if len(rows) > LISTED_ROWS else "")


def _chunked(report: DatasetReport, numbered: list[tuple[int, dict[str, Any]]],
             options: ReadOptions) -> list[tuple[int, dict[str, Any]]]:
    """A plain-text file's paragraphs packed into chunks for the options' model and max length; the report is
    marked chunked and gets the chunks' preview. Raises EngineError, OSError or ValueError when the model's
    tokenizer cannot be had."""
    tokenizer = tokenizer_for(options.model_name_or_path)
    paragraphs = [(number, row["text"]) for number, row in numbered]
    chunks = plain_text.chunk(paragraphs, tokenizer, options.max_length)
    report.chunked = True
    report.chunk_preview = plain_text.preview([text for _number, text in chunks], tokenizer)
    return [(number, {"text": text}) for number, text in chunks]


@lru_cache(maxsize=2)
def tokenizer_for(model_name: str):
    """The tokenizer of `model_name` (loaded once), which decides where a plain-text file's chunks end."""
    from engine.models import loader

    return loader.load_tokenizer(loader.resolve_model(model_name))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty), at most 200 chars."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def read_rows(path: Path, issues: list[Issue], options: ReadOptions | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(row number, row) pairs of a dataset file (see `read_file`)."""
    return read_file(path, issues, options or ReadOptions()).rows


def read_file(path: Path, issues: list[Issue], options: ReadOptions) -> FileRows:
    """(row number, row) pairs of a JSONL/JSON/CSV/TSV/Parquet/Excel/plain-text file, with how it was read.

    Row numbers are what the user finds in the file: the line number in JSONL (and where a plain-text
    paragraph starts), the position in a JSON list, the data row (header excluded) in CSV/TSV/Parquet.
    Unreadable JSONL lines become issues.
    """
    if not path.is_file():
        raise EngineError("dataset_not_found", {"path": str(path)}, hint="hint_check_path")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise EngineError("dataset_bad_type", {"suffix": suffix or path.name})
    try:
        if suffix not in TEXT_SUFFIXES:
            return FileRows(_binary_rows(path, suffix))
        text, used = codec.decode(path.read_bytes(), options.encoding)
        text = text.removeprefix("\ufeff")
        if suffix == ".jsonl":
            return FileRows(convert.jsonl_rows(text, partial(_bad_json_line, issues)), used)
        if suffix == ".json":
            return FileRows(list(enumerate(convert.json_document_rows(text), start=1)), used)
        if suffix in plain_text.SUFFIXES:
            return FileRows([(line, {"text": part}) for line, part in plain_text.paragraphs(text)], used)
        delimiter = codec.sniff_delimiter(text, suffix, options.delimiter)
        return FileRows(_table_rows(text, delimiter), used, delimiter)
    except codec.UnknownEncoding as exc:
        raise EngineError("dataset_bad_encoding", {"path": str(path), "encoding": options.encoding,
                                                   "detail": str(exc)[:200]}, hint="hint_choose_encoding") from None
    except (UnicodeDecodeError, ValueError, OSError, ImportError) as exc:
        raise EngineError("dataset_unreadable", {"path": str(path), "detail": first_line(exc)}) from None


def _binary_rows(path: Path, suffix: str) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a Parquet or Excel file, numbered from 1."""
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    import pandas as pd

    return list(enumerate(pd.read_excel(path, dtype=str, keep_default_na=False).to_dict(orient="records"), start=1))


def _table_rows(text: str, delimiter: str) -> list[tuple[int, dict[str, Any]]]:
    """The data rows of CSV/TSV `text` split at `delimiter`, every cell as text, numbered from 1."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return []
    return list(enumerate(frame.to_dict(orient="records"), start=1))


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
