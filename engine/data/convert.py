"""Dataset rows into TRL examples, with the standard library only: the one copy of the row rules.

Which format a file's column names suggest (English and Chinese synonyms, e.g. question/answer ->
prompt/completion), which column plays which canonical field, how JSON and JSONL text becomes rows,
how one row becomes TRL's conversational prompt/completion example (or a plain `text` row), and how many
rows a run holds out for evaluation and mixes in from a second dataset. Message content may be a list of
content blocks (their text joined); tool-calling turns (OpenAI `tool_calls`/`tool`, ShareGPT
`function_call`/`observation`) become TRL's messages-with-tools form with a `tools` column (JSON text);
preference rows (`chosen`/`rejected`) become TRL's conversational preference form, and their SFT example is
the prompt with the chosen answer; a KTO-style `label` that says the answer is bad leaves the row out.
`engine.data.mapping` and `engine.data.reading` build on it, and the exported training script carries
this file verbatim, so the script and the studio cannot turn a row into different examples or split them
differently. It imports nothing outside the standard library and never the studio.
"""
import json
from collections.abc import Callable
from typing import Any

# Canonical fields of each format: (name, required).
FORMAT_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "alpaca": (("instruction", True), ("input", False), ("output", True), ("system", False), ("history", False),
               ("label", False)),
    "sharegpt": (("conversations", True), ("system", False), ("tools", False), ("label", False)),
    "messages": (("messages", True), ("tools", False), ("label", False)),
    "prompt_completion": (("prompt", True), ("completion", True), ("label", False)),
    "preference": (("chosen", True), ("rejected", True), ("prompt", False), ("conversations", False),
                   ("system", False)),
    "text": (("text", True),),
}
FORMATS = tuple(FORMAT_FIELDS)
LIST_FIELDS = {"conversations", "messages", "history", "tools", "chosen", "rejected"}

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
    "tools": ("functions", "工具"),
    "label": ("kto_label", "标签"),
    "chosen": ("chosen_response", "优选回答"),
    "rejected": ("rejected_response", "劣选回答"),
}
# Detection order: the most specific shapes first.
DETECTION_ORDER = ("preference", "sharegpt", "messages", "alpaca", "prompt_completion", "text")
ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system", "function_call": "assistant",
                "observation": "tool", "tool": "tool", "function": "tool"}
# Which roles may follow each: a turn's role, or "call" for an assistant turn that calls tools.
NEXT_ROLES = {None: ("user",), "user": ("assistant",), "assistant": ("user",), "call": ("tool",),
              "tool": ("tool", "assistant")}
LABELS = {"true": True, "good": True, "yes": True, "1": True, "false": False, "bad": False, "no": False, "0": False}
HISTORY_SHAPE = "a list of [question, answer] pairs"
TURNS_SHAPE = "a list of turns with role and content"
TOOLS_SHAPE = "a JSON list of tool (function) definitions"
CALLS_SHAPE = "a JSON tool call with a name and arguments (or a list of them)"


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
        if canonical in LIST_FIELDS and isinstance(value, str) and value.strip().startswith(("[", "{")):
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
    """One row (canonical field names) as a TRL example; raises BadRow naming the field that is wrong.

    A row whose `label` says its answer is bad raises BadRow `dataset_labelled_bad` (left out of SFT).
    """
    if label_of(row) is False:
        raise BadRow(code="dataset_labelled_bad", field="label")
    if fmt == "preference":
        pair = preference_pair(row)
        return {"prompt": pair["prompt"], "completion": pair["chosen"]}
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
    """A ShareGPT or messages row: every turn but the last answer is the prompt; tool turns keep a `tools` column."""
    turns = row.get(key)
    if not isinstance(turns, list) or not turns:
        raise BadRow(code="dataset_missing_field", field=key)
    messages = [_message(turn, key, number) for number, turn in enumerate(turns, start=1)]
    if not any(m["role"] == "assistant" for m in messages):
        raise BadRow(code="dataset_no_assistant", field=key)
    if messages[-1]["role"] != "assistant":
        raise BadRow(code="dataset_last_not_assistant", field=key)
    _check_role_order(messages, key)
    system = row.get("system")
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    example = {"prompt": messages[:-1], "completion": messages[-1:]}
    tools = _tools(row)
    if "tools" in row or tools is not None or any(m["role"] == "tool" or "tool_calls" in m for m in messages):
        example["tools"] = None if tools is None else json.dumps(tools, ensure_ascii=False)
    return example


def _message(turn: Any, key: str, number: int) -> dict[str, Any]:
    """Turn `number` of field `key` as a chat message: text (content blocks joined), tool calls, or a tool result."""
    if not isinstance(turn, dict):
        raise BadRow(code="dataset_wrong_type", field=key, expected=TURNS_SHAPE)
    raw_role = turn.get("from", turn.get("role"))
    role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
    if role is None:
        raise BadRow(code="dataset_bad_role", field=key, turn=number, role=raw_role)
    content = turn.get("value", turn.get("content"))
    where = f"{key}[{number}]"
    if str(raw_role).lower() == "function_call":
        return {"role": "assistant", "content": "", "tool_calls": _tool_calls(content, where)}
    if role == "assistant" and turn.get("tool_calls"):
        text = "" if content is None else _content_text(content, where, number)
        return {"role": "assistant", "content": text if isinstance(text, str) else "",
                "tool_calls": _tool_calls(turn["tool_calls"], where)}
    text = _content_text(content, where, number)
    if not isinstance(text, str) or not text.strip():
        raise BadRow(code="dataset_missing_field", field=where)
    message = {"role": role, "content": text}
    if role == "tool" and isinstance(turn.get("name"), str):
        message["name"] = turn["name"]
    return message


def _content_text(content: Any, where: str, number: int) -> Any:
    """Message content as text: a list of content blocks (`{"type": "text", "text"|"value": ...}`) joined by
    newlines; BadRow `dataset_content_block` for a block that is not text (an image, say)."""
    if not isinstance(content, list):
        return content
    parts = []
    for block in content:
        kind = block.get("type", "text") if isinstance(block, dict) else type(block).__name__
        text = block if isinstance(block, str) else block.get("text", block.get("value")) if kind == "text" else None
        if not isinstance(text, str):
            raise BadRow(code="dataset_content_block", field=where, turn=number, block=kind)
        parts.append(text)
    return "\n".join(parts)


def _tool_calls(value: Any, where: str) -> list[dict[str, Any]]:
    """Tool calls (OpenAI `tool_calls`, or a ShareGPT `function_call` turn's JSON) in the chat-template form:
    `[{"type": "function", "function": {"name": ..., "arguments": {...}}}]`."""
    calls = _json_value(value, where, CALLS_SHAPE)
    calls = [calls] if isinstance(calls, dict) else calls
    if not isinstance(calls, list) or not calls:
        raise BadRow(code="dataset_wrong_type", field=where, expected=CALLS_SHAPE)
    out = []
    for call in calls:
        function = call.get("function", call) if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        arguments = _json_value(function.get("arguments", {}) if name else None, where, CALLS_SHAPE)
        if not isinstance(name, str) or not name.strip() or not isinstance(arguments, dict):
            raise BadRow(code="dataset_wrong_type", field=where, expected=CALLS_SHAPE)
        out.append({"type": "function", "function": {"name": name, "arguments": arguments}})
    return out


def _tools(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The row's tool definitions as the chat template takes them (`{"type": "function", "function": {...}}`
    each; a bare function schema is wrapped), or None when the row has none."""
    value = row.get("tools")
    if value is None or value == "" or value == [] or (isinstance(value, float) and value != value):
        return None
    tools = _json_value(value, "tools", TOOLS_SHAPE)
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise BadRow(code="dataset_wrong_type", field="tools", expected=TOOLS_SHAPE)
    return [t if "function" in t else {"type": "function", "function": t} for t in tools]


def _json_value(value: Any, where: str, shape: str) -> Any:
    """`value`, parsed when it is JSON text; BadRow `dataset_wrong_type` (expected `shape`) when it is not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise BadRow(code="dataset_wrong_type", field=where, expected=shape) from None


def _check_role_order(messages: list[dict[str, Any]], key: str) -> None:
    """After an optional first system message, turns alternate user, assistant, user, ...; an assistant turn that
    calls tools is followed by one or more tool results, then the assistant again."""
    start = 1 if messages[0]["role"] == "system" else 0
    previous = None
    for index, message in enumerate(messages[start:]):
        allowed = NEXT_ROLES[previous]
        if message["role"] not in allowed:
            raise BadRow(code="dataset_role_order", field=key, turn=start + index + 1, role=message["role"],
                         expected=allowed[-1])
        previous = "call" if message.get("tool_calls") else message["role"]


# ---- labels and preferences -------------------------------------------------------------------
def label_of(row: dict[str, Any]) -> bool | None:
    """A KTO-style `label`: True (a good answer), False (a bad one), None when the row has none.

    true/false, good/bad, yes/no and 1/0 are understood; anything else raises BadRow `dataset_bad_label`.
    """
    value = row.get("label")
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if str(value).strip().lower() in LABELS:
        return LABELS[str(value).strip().lower()]
    raise BadRow(code="dataset_bad_label", field="label", value=str(value))


def preference_pair(row: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A preference row as TRL's conversational preference example `{"prompt", "chosen", "rejected"}`.

    The prompt is the `prompt` text or messages, or the ShareGPT `conversations`, or (neither given) the turns
    that the `chosen` and `rejected` conversations share; each answer is text, one turn or a list of turns.
    """
    chosen, rejected = _answer_turns(row, "chosen"), _answer_turns(row, "rejected")
    prompt = _preference_prompt(row)
    if prompt is None:  # an implicit prompt: the turns both conversations begin with
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    if not prompt:
        raise BadRow(code="dataset_missing_field", field="prompt")
    for name, answer in (("chosen", chosen), ("rejected", rejected)):
        if answer[-1]["role"] != "assistant":
            raise BadRow(code="dataset_last_not_assistant", field=name)
    system = row.get("system")
    if isinstance(system, str) and system.strip() and prompt[0]["role"] != "system":
        prompt.insert(0, {"role": "system", "content": system})
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _answer_turns(row: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The `chosen` or `rejected` answer as messages: text is one assistant message."""
    value = row.get(name)
    if isinstance(value, str) and value.strip():
        return [{"role": "assistant", "content": value}]
    value = [value] if isinstance(value, dict) else value
    if not isinstance(value, list) or not value:
        raise BadRow(code="dataset_missing_field", field=name)
    return [_message(turn, name, number) for number, turn in enumerate(value, start=1)]


def _preference_prompt(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The prompt of a preference row as messages, or None when it has none (the prompt is then implicit)."""
    key = "conversations" if row.get("conversations") is not None else "prompt"
    value = row.get(key)
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise BadRow(code="dataset_wrong_type", field=key, expected=TURNS_SHAPE)
    return [_message(turn, key, number) for number, turn in enumerate(value, start=1)]


# ---- splits -----------------------------------------------------------------------------------
def held_out_count(rows: int, eval_split: float, eval_rows: int = 0) -> int:
    """How many of `rows` examples a run holds out for evaluation: `eval_rows` when > 0, else the share."""
    return eval_rows if eval_rows > 0 else int(round(rows * eval_split))


def mix_count(train_rows: int, extra_rows: int, ratio: float) -> int:
    """How many rows of a second dataset (of `extra_rows`) a run mixes into `train_rows` training rows."""
    return min(extra_rows, int(round(train_rows * ratio)))
