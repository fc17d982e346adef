"""Ollama's prompt rendering for the tests of the exported Modelfile: the subset of Go's text/template the studio's
Modelfile templates use (`{{-`/`-}}` trimming, `.Field`, `$.Field`, variables declared and reassigned, if/else if/
else, range with or without index variables, eq/and/or/not), and Ollama's way of filling it: the system messages
joined into `.System` and kept in `.Messages`, consecutive turns of one role merged, the Modelfile's SYSTEM first
when the conversation does not open with a system message (ollama's template/template.go and server/routes.go)."""
from __future__ import annotations

import re
from typing import Any

ACTION = re.compile(r"({{-? .*? -?}}|{{[^-].*?[^-]}})", re.DOTALL)
TERM = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+')


def ollama_prompt(template: str, messages: list[dict], system: str = "") -> str:
    """The prompt Ollama renders from `template` for a chat of `messages` ({"role", "content"}) with the Modelfile's
    SYSTEM `system`."""
    if system and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": system}, *messages]
    collated: list[dict] = []
    for message in messages:
        if collated and collated[-1]["Role"] == message["role"]:
            collated[-1]["Content"] += "\n\n" + message["content"]
        else:
            collated.append({"Role": message["role"], "Content": message["content"]})
    joined = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return render(template, {"System": joined, "Messages": collated})


def render(template: str, data: dict) -> str:
    """`template` filled from `data`, as Go's text/template would fill it."""
    nodes, rest = _parse(_pieces(template), 0)
    assert rest == len(_pieces(template)), "unbalanced {{ end }}"
    out: list[str] = []
    _run(nodes, data, [{"$": data}], out)
    return "".join(out)


def _pieces(template: str) -> list[tuple[str, str]]:
    """The template as ("text", text) and ("action", inside) pieces, with Go's whitespace trimming applied."""
    parts = ACTION.split(template)
    pieces: list[tuple[str, str]] = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            if index > 0 and parts[index - 1].endswith(" -}}"):
                part = part.lstrip()
            if index + 1 < len(parts) and parts[index + 1].startswith("{{- "):
                part = part.rstrip()
            pieces.append(("text", part))
        else:
            pieces.append(("action", part.removeprefix("{{").removesuffix("}}").strip("-").strip()))
    return pieces


def _parse(pieces: list, at: int) -> tuple[list, int]:
    """The nodes from `at` up to the `end`/`else` that closes them, and where that closing piece is."""
    nodes: list = []
    while at < len(pieces):
        kind, text = pieces[at]
        if kind == "text":
            nodes.append(("text", text))
        elif text == "end" or text.startswith("else"):
            return nodes, at
        elif text.startswith("if "):
            branches, condition = [], text[3:]
            while True:
                body, at = _parse(pieces, at + 1)
                branches.append((condition, body))
                closing = pieces[at][1]
                if closing == "end":
                    break
                condition = closing[8:] if closing.startswith("else if ") else "true"
            nodes.append(("if", branches))
        elif text.startswith("range "):
            body, at = _parse(pieces, at + 1)
            names, _, expression = text[6:].rpartition(":=")
            nodes.append(("range", [n.strip() for n in names.split(",") if n.strip()], expression.strip(), body))
        elif re.match(r"\$\w+ :?= ", text):
            name, operator, expression = text.split(" ", 2)
            nodes.append(("set", name, expression, operator == ":="))
        else:
            nodes.append(("out", text))
        at += 1
    return nodes, at


def _run(nodes: list, dot: Any, scopes: list[dict], out: list[str]) -> None:
    """Fill `nodes` with `dot` as `.` and `scopes` holding the variables, innermost last."""
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "out":
            out.append(str(_value(node[1], dot, scopes)))
        elif node[0] == "set":
            _, name, expression, declare = node
            holder = scopes[-1] if declare else next(s for s in reversed(scopes) if name in s)
            holder[name] = _value(expression, dot, scopes)
        elif node[0] == "if":
            for condition, body in node[1]:
                if _truthy(_value(condition, dot, scopes)):
                    _run(body, dot, [*scopes, {}], out)
                    break
        else:
            _, names, expression, body = node
            for index, item in enumerate(_value(expression, dot, scopes)):
                bound = dict(zip(names, (index, item))) if len(names) == 2 else dict(zip(names, (item,)))
                _run(body, item, [*scopes, bound], out)


def _value(expression: str, dot: Any, scopes: list[dict]) -> Any:
    """The value of a pipeline: one term, or a function (eq, and, or, not) applied to terms."""
    terms, _ = _terms(TERM.findall(expression), 0)
    return _call(terms, dot, scopes)


def _terms(tokens: list[str], at: int) -> tuple[list, int]:
    """The terms from `at` to the closing parenthesis (a parenthesised pipeline is one term, a list)."""
    terms: list = []
    while at < len(tokens) and tokens[at] != ")":
        if tokens[at] == "(":
            inner, at = _terms(tokens, at + 1)
            terms.append(inner)
        else:
            terms.append(tokens[at])
        at += 1
    return terms, at


def _call(terms: list, dot: Any, scopes: list[dict]) -> Any:
    """The value of `terms`: a function call when the first names one, else the single term's value."""
    head, args = terms[0], [_term(term, dot, scopes) for term in terms[1:]]
    functions = {"eq": lambda a, *b: a in b, "not": lambda a: not _truthy(a),
                 "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
                 "or": lambda *a: next((x for x in a if _truthy(x)), a[-1])}
    if head in functions:
        return functions[head](*args)
    assert not args, f"not a function: {head}"
    return _term(head, dot, scopes)


def _term(term: Any, dot: Any, scopes: list[dict]) -> Any:
    """One term's value: a parenthesised pipeline, a string, true/false, `.`, `.Field`, `$`, `$.Field` or `$name`."""
    if isinstance(term, list):
        return _call(term, dot, scopes)
    if term.startswith('"'):
        return term[1:-1].replace('\\"', '"').replace("\\n", "\n")
    if term in ("true", "false"):
        return term == "true"
    if term == ".":
        return dot
    if term.startswith("$."):
        return scopes[0]["$"][term[2:]]
    if term.startswith("."):
        return dot[term[1:]]
    return next(s[term] for s in reversed(scopes) if term in s)


def _truthy(value: Any) -> bool:
    """Go's truth: false, 0, "", nil and empty collections are false."""
    return bool(value)
