"""`ui.wiring`: engine errors worded in the handler's language; bound handlers as Gradio reads them."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio import helpers, utils

from engine import EngineError
from ui.wiring import bind, session_of, worded_errors


class Shelf:
    """A view type only this module knows (Gradio must still resolve the handler's annotations)."""


@worded_errors
def count_rows(studio, view: Shelf, lang: str, path: str, request: gr.Request, *values) -> dict:
    """Inputs: language, path, values. Output: how many values came, and from which session."""
    if not path:
        raise EngineError("dataset_not_found", {"path": "-"})
    return {view: (len(values), session_of(request), studio)}


@worded_errors
def stream_words(studio, view, lang: str, text: str):
    """Input: language, text. Outputs (streamed): the words so far."""
    words = []
    for word in text.split():
        if word == "bad":
            raise EngineError("dataset_not_found", {"path": word})
        words.append(word)
        yield {view: " ".join(words)}


def test_bound_handlers_keep_their_name_docstring_and_remaining_inputs():
    bound = bind(count_rows, "studio", "view", fields=["max_steps", "lora_r"])
    assert bound.__name__ == "count_rows" and bound.__doc__.startswith("Inputs: language, path")
    assert list(inspect.signature(bound).parameters) == ["lang", "path", "request", "max_steps", "lora_r"]
    assert bound("en", "a.jsonl", SimpleNamespace(session_hash="s1"), 5, 8) == {"view": (2, "s1", "studio")}


def test_gradio_sees_the_request_and_names_each_field():
    bound = bind(count_rows, "studio", "view", fields=["max_steps", "lora_r"])
    assert [name for name, *_rest in utils.get_function_params(bound)] == ["lang", "path", "max_steps", "lora_r"]
    request = SimpleNamespace(session_hash="s2")
    inputs, *_rest = helpers.special_args(bound, ["en", "a.jsonl", 5, 8], request=request)
    assert inputs == ["en", "a.jsonl", request, 5, 8]
    unnamed = bind(count_rows, "studio", "view")
    assert [name for name, *_rest in utils.get_function_params(unnamed)] == ["lang", "path"]


def test_engine_errors_become_gradio_errors_in_the_handlers_language():
    bound = bind(count_rows, "studio", "view")
    with pytest.raises(gr.Error, match="数据集文件 - 不存在"):
        bound("zh", "", None)
    with pytest.raises(gr.Error, match="Dataset file - does not exist"):
        count_rows("studio", "view", "en", "", None)


def test_streaming_handlers_stream_and_word_their_errors():
    bound = bind(stream_words, "studio", "view")
    assert inspect.isgeneratorfunction(bound)
    assert list(bound("en", "one two")) == [{"view": "one"}, {"view": "one two"}]
    replies = bound("zh", "one bad")
    assert next(replies) == {"view": "one"}
    with pytest.raises(gr.Error, match="数据集文件 bad 不存在"):
        next(replies)


def test_a_missing_request_is_the_empty_session():
    assert session_of(None) == "" and session_of(SimpleNamespace(session_hash=None)) == ""
