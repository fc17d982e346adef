"""How module-level UI handlers meet Gradio: engine errors worded in the page's language, bound arguments.

A handler is a plain function `handler(studio, view, lang, ...) -> dict` (or a generator of such dicts):
`view` holds the tab's components, the dict is keyed by them. Tests call handlers directly with a fake
`Studio` and a view of plain names; the tab binds the real ones with `bind` when it wires events.
"""
from __future__ import annotations

import functools
import inspect
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


def bind(handler: Callable, *leading: Any) -> Callable:
    """`handler` with its first parameters fixed to `leading` (the studio, the view), keeping its name, docstring
    and the signature of the rest, so Gradio's API lists the remaining inputs by name (and still sees a
    `gr.Progress()` default)."""
    signature = inspect.signature(handler)
    rest = list(signature.parameters.values())[len(leading):]

    if inspect.isgeneratorfunction(inspect.unwrap(handler)):
        @functools.wraps(handler)
        def stream(*args, **kwargs):
            yield from handler(*leading, *args, **kwargs)
        bound = stream
    else:
        @functools.wraps(handler)
        def bound(*args, **kwargs):
            return handler(*leading, *args, **kwargs)
    bound.__signature__ = signature.replace(parameters=rest)
    del bound.__wrapped__  # Gradio must read the signature above, not the handler's own
    return bound
