"""How module-level UI handlers meet Gradio: engine errors worded in the page's language, bound arguments.

A handler is a plain function `handler(studio, view, lang, ...) -> dict` (or a generator of such dicts):
`view` holds the tab's components, the dict is keyed by them. Tests call handlers directly with a fake
`Studio` and a view of plain names; the tab binds the real ones with `bind` when it wires events.
"""
from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable

import gradio as gr

from engine import EngineError, render_error


def worded_errors(handler: Callable) -> Callable:
    """`handler` with an `EngineError` turned into a `gr.Error` worded in its `lang` argument (default English);
    generator handlers (streaming) are wrapped the same way."""
    signature = inspect.signature(handler)

    def language(args: tuple, kwargs: dict) -> str:
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError:
            return "en"
        return bound.arguments.get("lang") or "en"

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def stream(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except EngineError as error:
                raise gr.Error(render_error(error, language(args, kwargs))) from None
        return stream

    @functools.wraps(handler)
    def run(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except EngineError as error:
            raise gr.Error(render_error(error, language(args, kwargs))) from None
    return run


def bind(handler: Callable, *leading: Any, fields: list[str] | None = None) -> Callable:
    """`handler` with its first parameters fixed to `leading` (the studio, the view), keeping its name, docstring
    and the signature of the rest, so Gradio's API lists the remaining inputs by name (and still sees a
    `gr.Progress()` default and a `gr.Request` annotation). `fields` names the values the handler takes as
    `*values` (the form's fields), so API clients can pass `max_steps=2` instead of `param_17`."""
    signature = inspect.signature(handler)
    hints = _resolved_hints(handler)
    rest = [p.replace(annotation=hints.get(p.name, p.annotation))
            for p in list(signature.parameters.values())[len(leading):]]
    if fields is not None:
        rest = _named_values(rest, fields)
    shown = signature.replace(parameters=rest, return_annotation=hints.get("return", signature.return_annotation))

    if inspect.isgeneratorfunction(inspect.unwrap(handler)):
        @functools.wraps(handler)
        def stream(*args, **kwargs):
            called = shown.bind(*args, **kwargs)
            yield from handler(*leading, *called.args, **called.kwargs)
        bound = stream
    else:
        @functools.wraps(handler)
        def bound(*args, **kwargs):
            called = shown.bind(*args, **kwargs)
            return handler(*leading, *called.args, **called.kwargs)
    bound.__signature__ = shown
    bound.__annotations__ = {p.name: p.annotation for p in rest if p.annotation is not inspect.Parameter.empty}
    del bound.__wrapped__  # Gradio must read the signature above, not the handler's own
    return bound


def session_of(request: gr.Request | None) -> str:
    """The browser session's id (each page load, each `gradio_client.Client`, has its own)."""
    return getattr(request, "session_hash", None) or ""


def _resolved_hints(handler: Callable) -> dict[str, Any]:
    """The handler's annotations as objects (Gradio compares them with `gr.Request` in this module)."""
    try:
        return typing.get_type_hints(inspect.unwrap(handler))
    except (NameError, TypeError):
        return {}


def _named_values(parameters: list[inspect.Parameter], fields: list[str]) -> list[inspect.Parameter]:
    """`parameters` with the `*values` one replaced by one positional parameter per field name."""
    kinds = [p.kind for p in parameters]
    at = kinds.index(inspect.Parameter.VAR_POSITIONAL)
    named = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in fields]
    return parameters[:at] + named + parameters[at + 1:]
