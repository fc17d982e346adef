"""Tool-calling data and the model's chat template: does the template show the model its tools and tool calls?

A template that ignores them (the bundled SmolLM2's renders only role and content) would train the model on
conversations with the calls silently dropped, so such data is refused with a message naming the reason.
The test is a rendering, not a guess from the template's text: a probe conversation with a uniquely named
tool and call is rendered, and both names must appear.
"""
from __future__ import annotations

import json
from typing import Any

from engine.errors import EngineError, Issue

_PROBE_TOOL = "probe_tool_x7q"
_PROBE_CALL = "probe_call_k3z"
_PROBE = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"type": "function", "function": {"name": _PROBE_CALL, "arguments": {"a": 1}}}]},
    {"role": "tool", "name": _PROBE_CALL, "content": "ok"},
    {"role": "assistant", "content": "done"},
]
_PROBE_TOOLS = [{"type": "function", "function": {"name": _PROBE_TOOL, "description": "probe",
                                                  "parameters": {"type": "object", "properties": {}}}}]


def uses_tools(examples: list[dict[str, Any]]) -> bool:
    """Whether any example defines tools or holds a tool call or a tool result."""
    return any(example.get("tools") or any(m.get("tool_calls") or m["role"] == "tool"
                                           for m in (*example.get("prompt", ()), *example.get("completion", ())))
               for example in examples)


def renders_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template writes both the tools it is given and the assistant's tool calls."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    try:
        text = tokenizer.apply_chat_template(_PROBE, tools=_PROBE_TOOLS, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that cannot render tool turns does not support them
        return False
    return _PROBE_TOOL in text and _PROBE_CALL in text


def tools_issue(examples: list[dict[str, Any]], tokenizer, model: str) -> Issue | None:
    """A dataset-level error when the examples use tools and the model's template does not render them."""
    if uses_tools(examples) and not renders_tools(tokenizer):
        return Issue("error", "dataset_tools_unsupported", params={"model": model})
    return None


def require_tool_template(examples: list[dict[str, Any]], tokenizer, model: str) -> None:
    """Raise EngineError `dataset_tools_unsupported` where `tools_issue` finds the template cannot show tools."""
    issue = tools_issue(examples, tokenizer, model)
    if issue is not None:
        raise EngineError(issue.code, issue.params, hint="hint_pick_tool_model")


def template_kwargs(example: dict[str, Any]) -> dict[str, Any]:
    """The `apply_chat_template` keywords an example needs: its tools (stored as JSON text), when it has some."""
    tools = example.get("tools")
    return {"tools": json.loads(tools) if isinstance(tools, str) else tools} if tools else {}
