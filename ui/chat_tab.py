"""Chat tab: a conversation answered side by side by two models, the baseline on the left (the base model, any
adapter or any checkpoint) and the candidate on the right (an adapter or a checkpoint).

Both sides use the candidate's saved chat template (the one used in training) and the same generation settings;
each side continues its own conversation, and each pane's heading names its model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import BASE_CHOICE, Studio
from ui import gen_settings, journey
from ui.i18n import t
from ui.page import Page
from ui.study_sides import choice_name, refuse_same_sides, side_choices, side_pickers
from ui.wiring import bind, worded_errors

MODEL_LANE = "model"  # one queue lane: generation requests never overlap on the model
DEFAULTS = gen_settings.DEFAULTS


@dataclass
class ChatView:
    """The Chat tab's components that handlers fill: `baseline` and `run` pick the left and right sides, the
    `base_*` components show the left side (the baseline), the `adapter_*` ones the right side (the candidate)."""

    baseline: Any
    run: Any
    base_answer: Any  # the latest answers alone (hidden; for API clients)
    adapter_answer: Any
    base_chat: Any
    adapter_chat: Any
    prompt: Any


def refresh_runs(studio: Studio, view: ChatView, lang: str, baseline: str | None = BASE_CHOICE,
                 run_id: str | None = None) -> dict:
    """Inputs: language, the chosen baseline and candidate. Outputs: both pickers worded in the language, each
    keeping its choice while it is still offered: the baseline picker (the base model, then every adapter and
    checkpoint), the candidate picker (every run's final adapter and checkpoints, newest first)."""
    left, right = side_pickers(studio, lang, baseline, run_id)
    return {view.baseline: left, view.run: right}


def show_sides(studio: Studio, view: ChatView, lang: str, baseline: str | None, run_id: str | None) -> dict:
    """Inputs: language, the chosen baseline and candidate. Outputs: both conversations' headings, naming their
    models in the language."""
    return {view.base_chat: gr.update(label=choice_name(studio, baseline or BASE_CHOICE, lang)),
            view.adapter_chat: gr.update(label=choice_name(studio, run_id, lang))}


@worded_errors
def ask_both(studio: Studio, view: ChatView, lang: str, run_id: str | None, question: str,
             base_history: list | None, adapter_history: list | None, new_tokens=DEFAULTS.max_new_tokens,
             temp=DEFAULTS.temperature, nucleus=DEFAULTS.top_p, penalty=DEFAULTS.repetition_penalty,
             gen_seed=DEFAULTS.seed, system="", baseline: str | None = BASE_CHOICE):
    """Inputs: language, the candidate, question, both conversations so far, generation settings, the baseline
    (the base model unless another is given). Outputs (streamed as tokens arrive, both sides at once): the
    baseline's and the candidate's answers, both conversations with the new turn, a cleared prompt."""
    if not run_id:
        raise gr.Error(t("no_runs", lang))
    if not question or not question.strip():
        raise gr.Error(t("empty_prompt", lang))
    baseline = baseline or BASE_CHOICE
    refuse_same_sides(studio, baseline, run_id, lang)
    params = gen_settings.params(new_tokens, temp, nucleus, penalty, gen_seed, system)
    history = (messages_of(base_history), messages_of(adapter_history))
    turn = {"role": "user", "content": question.strip()}
    for base, adapter in studio.stream_compare(run_id, question.strip(), params, history, baseline=baseline):
        yield {view.base_answer: base, view.adapter_answer: adapter,
               view.base_chat: history[0] + [turn, {"role": "assistant", "content": base}],
               view.adapter_chat: history[1] + [turn, {"role": "assistant", "content": adapter}], view.prompt: ""}


def clear_conversations(studio: Studio, view: ChatView) -> dict:
    """Inputs: none. Outputs: both conversations, emptied."""
    return {view.base_chat: [], view.adapter_chat: []}


def messages_of(history: list | None) -> list[dict]:
    """Chatbot messages (content as a string or a list of text parts) as plain role/content dicts."""
    def text(content) -> str:
        """A message's content as one string."""
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))

    return [{"role": m["role"], "content": text(m["content"])} for m in (history or [])]


def build(page: Page) -> None:
    """Lay out the Chat tab and wire its events."""
    view = _layout(page)
    studio, lang = page.studio, page.language
    sides = [lang, view.baseline, view.run]
    refreshing, pickers, chats = bind(refresh_runs, studio, view), [view.baseline, view.run], [view.base_chat,
                                                                                                view.adapter_chat]
    gr.on(triggers=[view.refresh.click, page.demo.load], fn=refreshing, inputs=sides, outputs=pickers,
          api_name="chat_runs")
    page.language_switch.add(refreshing, sides, pickers)
    page.tab_switch.add(refreshing, sides, pickers)  # a run trained since
    showing = bind(show_sides, studio, view)
    gr.on(triggers=[view.baseline.change, view.run.change], fn=showing, inputs=sides, outputs=chats,
          api_visibility="private", show_progress="hidden")
    page.language_switch.add(showing, sides, chats)
    view.ask.click(bind(ask_both, studio, view), [lang, view.run, view.prompt, view.base_chat, view.adapter_chat]
                   + view.settings + [view.baseline], [view.base_answer, view.adapter_answer, view.base_chat,
                                                       view.adapter_chat, view.prompt],
                   api_name="ask", concurrency_id=MODEL_LANE)
    view.clear.click(bind(clear_conversations, studio, view), None, [view.base_chat, view.adapter_chat],
                     api_visibility="private")


@dataclass
class ChatLayout(ChatView):
    """The whole tab: the components handlers fill, the generation settings and the buttons."""

    settings: list
    refresh: Any
    ask: Any
    clear: Any


def _layout(page: Page) -> ChatLayout:
    """The tab's components, laid out; each conversation pane is headed by the name of its side's model."""
    texts, studio = page.texts, page.studio
    texts.add(gr.Markdown(), value="chat_intro_sides")
    left, right = side_choices(studio, texts.lang)
    with gr.Row():
        baseline = texts.add(gr.Dropdown(**left, allow_custom_value=True, elem_id="chat-baseline", scale=2),
                             label="chat_baseline", info="chat_baseline_info")
        run = texts.add(gr.Dropdown(**right, allow_custom_value=True, elem_id="chat-run", scale=2),
                        label="chat_candidate", info="chat_candidate_info")
        refresh = texts.add(gr.Button(scale=1, elem_id="chat-refresh"), value="refresh")
    settings = gen_settings.build(page, "gen-settings")
    with gr.Row():
        base_chat = gr.Chatbot(label=choice_name(studio, left["value"], texts.lang), elem_id="chat-base", height=380)
        adapter_chat = gr.Chatbot(label=choice_name(studio, right["value"], texts.lang), elem_id="chat-adapter",
                                  height=380)
    prompt = texts.add(gr.Textbox(lines=3, elem_id="chat-prompt"), label="prompt", placeholder="prompt_placeholder")
    with gr.Row():
        ask = texts.add(gr.Button(variant="primary", elem_id="chat-ask"), value="ask")
        clear = texts.add(gr.Button(elem_id="chat-clear"), value="chat_clear")
    journey.next_button(page, "tab-study", "next_to_study", "next-study")
    return ChatLayout(baseline=baseline, run=run, base_answer=gr.Textbox(visible=False),
                      adapter_answer=gr.Textbox(visible=False), base_chat=base_chat, adapter_chat=adapter_chat,
                      prompt=prompt, settings=settings, refresh=refresh, ask=ask, clear=clear)
