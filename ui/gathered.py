"""One request for the many small handlers that answer one page-wide event (the language switch, a change of tab).

Gradio's front end sends the handlers of one event one after another, each a queue round trip (about 0.5 s), and
shows each answer as it arrives, so a slow handler's stale answer can land after a newer one. Gathered, they cost one
round trip, land together, and with `trigger_mode="always_last"` a second switch waits for the first to finish
instead of being dropped or overtaken. Each tab adds its part where it builds its components; the page wires the
gathering once every tab is built.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr


@dataclass(frozen=True)
class Part:
    """One handler of the gathering, with its own inputs and outputs (as it would be wired alone)."""

    handler: Callable
    inputs: list
    outputs: list

    @property
    def wants_request(self) -> bool:
        """Whether the handler takes the browser's `gr.Request` (by a parameter named `request`)."""
        return "request" in inspect.signature(self.handler).parameters


class Gathering:
    """Handlers that answer the same event, run as one."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def add(self, handler: Callable, inputs: list, outputs: list) -> None:
        """Run `handler(*inputs)` (keyed by `outputs`, or a dict keyed by some of them) when the event fires."""
        if inspect.isgeneratorfunction(inspect.unwrap(handler)):
            raise TypeError(f"{handler.__name__} streams; a gathered handler answers once")
        self.parts.append(Part(handler, list(inputs), list(outputs)))

    def wire(self, triggers: list, api_name: str) -> None:
        """Run every part on `triggers` in one request (no progress shown: they are small)."""
        inputs, outputs = _unique(self.parts, "inputs"), _unique(self.parts, "outputs")
        gr.on(triggers, self.handler(inputs), inputs, outputs, api_name=api_name, api_visibility="private",
              show_progress="hidden", trigger_mode="always_last")

    def handler(self, inputs: list) -> Callable:
        """A function of the gathered `inputs` (and the request) returning every part's outputs as one dict; a part
        that raises `gr.Error` leaves its outputs as they are and its message shows as a warning."""
        at = {id(component): index for index, component in enumerate(inputs)}

        def gathered(*values, request: gr.Request | None = None) -> dict:
            updates, problems = {}, []
            for part in self.parts:
                args = [values[at[id(component)]] for component in part.inputs]
                try:
                    answer = part.handler(*args, **({"request": request} if part.wants_request else {}))
                except gr.Error as error:
                    problems.append(str(error.message))
                    continue
                updates.update(keyed(part.outputs, answer))
            for message in dict.fromkeys(problems):
                gr.Warning(message)
            return updates

        parameters = [inspect.Parameter(f"value_{index}", inspect.Parameter.POSITIONAL_OR_KEYWORD)
                      for index in range(len(inputs))]
        parameters.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                            annotation=gr.Request))
        gathered.__signature__ = inspect.Signature(parameters)  # Gradio hands the request to the last parameter
        gathered.__annotations__ = {"request": gr.Request}
        return gathered


def keyed(outputs: list, answer: Any) -> dict:
    """A handler's answer as a dict keyed by its components: a dict as it is, one value for a single output, a
    list or tuple in `outputs` order."""
    if isinstance(answer, dict):
        return answer
    if len(outputs) == 1:
        return {outputs[0]: answer}
    if not isinstance(answer, (list, tuple)) or len(answer) != len(outputs):
        raise TypeError(f"an answer for {len(outputs)} outputs must be a list of that many values")
    return dict(zip(outputs, answer))


def _unique(parts: list[Part], side: str) -> list:
    """The components of every part's `side` ("inputs" or "outputs"), each once, in first-seen order."""
    seen: dict[int, Any] = {}
    for part in parts:
        for component in getattr(part, side):
            seen.setdefault(id(component), component)
    return list(seen.values())
