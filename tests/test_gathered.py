"""Gathered handlers (ui.gathered): many small handlers answer one event in one request, a failing one leaves the
others' answers, and the page wires its language switch and tab change as one dependency each."""
from __future__ import annotations

import gradio as gr
import pytest

from engine.studio import Studio
from ui import build_app
from ui.gathered import Gathering, keyed


def test_keyed_takes_a_dict_one_value_or_a_list():
    assert keyed(["a", "b"], {"a": 1}) == {"a": 1}
    assert keyed(["a"], [1, 2]) == {"a": [1, 2]}  # one output: the list is its value
    assert keyed(["a", "b"], (1, 2)) == {"a": 1, "b": 2}
    with pytest.raises(TypeError, match="2 outputs"):
        keyed(["a", "b"], [1])


def test_every_part_answers_from_its_own_inputs_and_a_failing_part_only_warns():
    gathering, seen = Gathering(), {}

    def words(lang, name):
        return f"{lang}:{name}"

    def with_request(lang, request=None):
        seen["request"] = request
        return {"box": lang.upper()}

    def failing(lang):
        raise gr.Error(f"no file ({lang})")

    gathering.add(words, ["lang", "name"], ["label"])
    gathering.add(failing, ["lang"], ["broken"])
    gathering.add(with_request, ["lang"], ["box", "other"])
    handler = gathering.handler(["lang", "name"])
    with pytest.warns(UserWarning, match=r"no file \(zh\)"):
        answer = handler("zh", "Ann", request="the request")
    assert answer == {"label": "zh:Ann", "box": "ZH"}  # the failing part's output is left as it is
    assert seen["request"] == "the request"


def test_a_streaming_handler_is_refused():
    def stream(lang):
        yield lang

    with pytest.raises(TypeError, match="streams"):
        Gathering().add(stream, ["lang"], ["box"])


def test_the_page_rewords_its_tabs_in_one_request_after_the_last_switch(tmp_path):
    app = build_app(Studio(tmp_path / "runs"))
    language = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "language")
    on_switch = [fn for fn in app.fns.values() if (language._id, "change") in fn.targets]
    gathered = [fn for fn in on_switch if fn.api_name == "reword_tabs"]
    assert len(gathered) == 1 and gathered[0].trigger_mode == "always_last"
    # besides the gathering, only the dataset check listens to the switch (it queues with the other checks)
    others = [fn for fn in on_switch if fn.api_name != "reword_tabs"]
    assert [fn.concurrency_id for fn in others] == ["dataset-checks"]
    outputs = [block._id for block in gathered[0].outputs]
    assert len(outputs) == len(set(outputs)) > 20  # every tab's rewordings, each output once
