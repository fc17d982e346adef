"""Dataset rows into TRL examples, with the standard library only: the one copy of the row rules.

Which format a file's column names suggest (English and Chinese synonyms, e.g. question/answer ->
prompt/completion), which column plays which canonical field, how JSON and JSONL text becomes rows,
how one row becomes TRL's conversational prompt/completion example (or a plain `text` row), and how many
rows a run holds out for evaluation and mixes in from a second dataset.
`engine.data.mapping` and `engine.data.reading` build on it, and the exported training script carries
this file verbatim, so the script and the studio cannot turn a row into different examples or split them
differently. It imports nothing outside the standard library and never the studio.
"""
import json
from collections.abc import Callable
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
ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system"}
HISTORY_SHAPE = "a list of [question, answer] pairs"
TURNS_SHAPE = "a list of turns with role and content"


class BadRow(ValueError):
    """Why a row cannot become a training example: a message code, the canonical field and the code's params."""

    def __init__(self, code: str, field: str, **params: Any) -> None:
        super().__init__(code)
        self.code, self.field, self.params = code, field, params


# ---- columns ----------------------------------------------------------------------------------
def match_column(field_name: str, columns: list[str]) -> str | None:
    """The column holding canonical field `field_name` (its own name first, then its synonyms), or None."""
    lowered = {c.strip().lower(): c for c in columns}
    for candidate in (field_name,) + SYNONYMS.get(field_name, ()):
        if candidate in lowered:
            return lowered[candidate]
    return None


def columns_for(fmt: str, columns: list[str]) -> dict[str, str]:
    """{canonical field: column} for the fields of format `fmt` that some column provides."""
    return {name: column for name, _required in FORMAT_FIELDS[fmt] if (column := match_column(name, columns))}


def missing_fields(fmt: str | None, found: dict[str, str]) -> list[str]:
    """Required fields of format `fmt` that `found` ({canonical field: column}) lacks."""
    if fmt is None:
        return []
    return [name for name, required in FORMAT_FIELDS[fmt] if required and name not in found]


def detect_columns(columns: list[str]) -> tuple[str | None, dict[str, str]]:
    """(format, {canonical field: column}) of the first format whose required fields all match; (None, {})."""
    for fmt in DETECTION_ORDER:
        found = columns_for(fmt, columns)
        if not missing_fields(fmt, found):
            return fmt, found
    return None, {}


def rename_columns(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """The row with canonical field names; JSON text in list fields (CSV/Excel cells) is parsed."""
    out = {}
    for canonical, column in columns.items():
        value = row.get(column)
        if canonical in LIST_FIELDS and isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[canonical] = value
    return out


# ---- JSON and JSONL text ----------------------------------------------------------------------
def json_document_rows(text: str) -> list[dict[str, Any]]:
    """Rows of a JSON document: a list of rows, one row object, or an object wrapping a list of rows.

    Raises ValueError (json.JSONDecodeError included) when the text is not such a document.
    """
    if not text.strip():
        return []
    data = json.loads(text)
    if isinstance(data, dict):
        if detect_columns(list(data))[0] is None:
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        else:
            data = [data]
    if not isinstance(data, list):
        raise ValueError("expected a list of rows")
    return [row if isinstance(row, dict) else {"text": row} for row in data]


def jsonl_rows(text: str, bad_line: Callable[[int, str], None]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of each JSON line; blank lines are passed over, `bad_line(number, detail)` hears of
    the rest that are not JSON."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            bad_line(number, exc.msg)
            continue
        rows.append((number, row if isinstance(row, dict) else {"text": row}))
    return rows


# ---- one row into one example -----------------------------------------------------------------
def to_example(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    """One row (canonical field names) as a TRL example; raises BadRow naming the field that is wrong."""
    if fmt == "text":
        return {"text": _text(row, "text")}
    if fmt == "prompt_completion":
        return {"prompt": [{"role": "user", "content": _text(row, "prompt")}],
                "completion": [{"role": "assistant", "content": _text(row, "completion")}]}
    if fmt == "alpaca":
        return _alpaca(row)
    return _conversation(row, "conversations" if fmt == "sharegpt" else "messages")


def _text(row: dict[str, Any], name: str, required: bool = True) -> str:
    """The text of field `name` (a missing or NaN cell reads as empty); BadRow if not text or, when required, empty."""
    value = row.get(name)
    if value is None or (isinstance(value, float) and value != value):
        value = ""
    if not isinstance(value, str):
        raise BadRow(code="dataset_wrong_type", field=name, expected="text")
    if required and not value.strip():
        raise BadRow(code="dataset_missing_field", field=name)
    return value


def _alpaca(row: dict[str, Any]) -> dict[str, Any]:
    """An Alpaca row: optional system, history pairs, then the instruction (with its input) and the output."""
    instruction = _text(row, "instruction")
    extra = _text(row, "input", required=False)
    answer = _text(row, "output")
    messages = []
    system = _text(row, "system", required=False)
    if system.strip():
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise BadRow(code="dataset_wrong_type", field="history", expected=HISTORY_SHAPE)
    for pair in history:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise BadRow(code="dataset_wrong_type", field="history", expected=HISTORY_SHAPE)
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    question = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages.append({"role": "user", "content": question})
    return {"prompt": messages, "completion": [{"role": "assistant", "content": answer}]}


def _conversation(row: dict[str, Any], key: str) -> dict[str, Any]:
    """A ShareGPT or messages row: every turn but the last answer is the prompt."""
    turns = row.get(key)
    if not isinstance(turns, list) or not turns:
        raise BadRow(code="dataset_missing_field", field=key)
    messages = []
    for turn_number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise BadRow(code="dataset_wrong_type", field=key, expected=TURNS_SHAPE)
        raw_role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise BadRow(code="dataset_bad_role", field=key, turn=turn_number, role=raw_role)
        if not isinstance(content, str) or not content.strip():
            raise BadRow(code="dataset_missing_field", field=f"{key}[{turn_number}]")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise BadRow(code="dataset_no_assistant", field=key)
    if messages[-1]["role"] != "assistant":
        raise BadRow(code="dataset_last_not_assistant", field=key)
    _check_role_order(messages, key)
    system = row.get("system")
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _check_role_order(messages: list[dict[str, str]], key: str) -> None:
    """After an optional first system message, turns alternate user, assistant, user, ..."""
    start = 1 if messages[0]["role"] == "system" else 0
    for index, message in enumerate(messages[start:]):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise BadRow(code="dataset_role_order", field=key, turn=start + index + 1, role=message["role"],
                         expected=expected)


# ---- splits -----------------------------------------------------------------------------------
def held_out_count(rows: int, eval_split: float, eval_rows: int = 0) -> int:
    """How many of `rows` examples a run holds out for evaluation: `eval_rows` when > 0, else the share."""
    return eval_rows if eval_rows > 0 else int(round(rows * eval_split))


def mix_count(train_rows: int, extra_rows: int, ratio: float) -> int:
    """How many rows of a second dataset (of `extra_rows`) a run mixes into `train_rows` training rows."""
    return min(extra_rows, int(round(train_rows * ratio)))
