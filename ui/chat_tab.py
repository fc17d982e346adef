"""Chat tab: a conversation answered side by side by the base model and a trained adapter.

Both sides use the adapter's saved chat template (the one used in training) and the same generation
settings; each side continues its own conversation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import Studio
from ui import gen_settings, present
from ui.i18n import t
from ui.page import Page
from ui.wiring import bind, worded_errors

MODEL_LANE = "model"  # one queue lane: generation requests never overlap on the model
DEFAULTS = gen_settings.DEFAULTS


@dataclass
class ChatView:
    """The Chat tab's components that handlers fill."""

    run: Any
    base_answer: Any  # the latest answers alone (hidden; for API clients)
    adapter_answer: Any
    base_chat: Any
    adapter_chat: Any
    prompt: Any


def refresh_runs(studio: Studio, view: ChatView, lang: str) -> dict:
    """Input: language. Output: the adapter picker: every run's final adapter and checkpoints, newest first."""
    choices = present.adapter_choices(studio.adapter_choices(), lang)
    return {view.run: gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)}


@worded_errors
def ask_both(studio: Studio, view: ChatView, lang: str, run_id: str | None, question: str,
             base_history: list | None, adapter_history: list | None, new_tokens=DEFAULTS.max_new_tokens,
             temp=DEFAULTS.temperature, nucleus=DEFAULTS.top_p, penalty=DEFAULTS.repetition_penalty,
             gen_seed=DEFAULTS.seed, system=""):
    """Inputs: language, run, question, both conversations so far, generation settings.
    Outputs (streamed as tokens arrive): the base and adapter answers, both conversations with the
    new turn, a cleared prompt."""
    if not run_id:
        raise gr.Error(t("no_runs", lang))
    if not question or not question.strip():
        raise gr.Error(t("empty_prompt", lang))
    params = gen_settings.params(new_tokens, temp, nucleus, penalty, gen_seed, system)
    history = (messages_of(base_history), messages_of(adapter_history))
    turn = {"role": "user", "content": question.strip()}
    for base, adapter in studio.stream_compare(run_id, question.strip(), params, history):
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
    gr.on(triggers=[view.refresh.click, page.demo.load], fn=bind(refresh_runs, studio, view), inputs=[lang],
          outputs=[view.run], api_name="chat_runs")
    view.ask.click(bind(ask_both, studio, view), [lang, view.run, view.prompt, view.base_chat, view.adapter_chat]
                   + view.settings, [view.base_answer, view.adapter_answer, view.base_chat, view.adapter_chat,
                                     view.prompt], api_name="ask", concurrency_id=MODEL_LANE)
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
    """The tab's components, laid out."""
    texts = page.texts
    texts.add(gr.Markdown(), value="chat_intro")
    runs = present.adapter_choices(page.studio.adapter_choices(), texts.lang)
    with gr.Row():
        run = texts.add(gr.Dropdown(choices=runs, value=runs[0][1] if runs else None, allow_custom_value=True,
                                    elem_id="chat-run", scale=4), label="run", info="run_info")
        refresh = texts.add(gr.Button(scale=1, elem_id="chat-refresh"), value="refresh")
    settings = gen_settings.build(page, "gen-settings")
    with gr.Row():
        base_chat = texts.add(gr.Chatbot(elem_id="chat-base", height=380), label="answer_base")
        adapter_chat = texts.add(gr.Chatbot(elem_id="chat-adapter", height=380), label="answer_adapter")
    prompt = texts.add(gr.Textbox(lines=3, elem_id="chat-prompt"), label="prompt", placeholder="prompt_placeholder")
    with gr.Row():
        ask = texts.add(gr.Button(variant="primary", elem_id="chat-ask"), value="ask")
        clear = texts.add(gr.Button(elem_id="chat-clear"), value="chat_clear")
    return ChatLayout(run=run, base_answer=gr.Textbox(visible=False), adapter_answer=gr.Textbox(visible=False),
                      base_chat=base_chat, adapter_chat=adapter_chat, prompt=prompt, settings=settings,
                      refresh=refresh, ask=ask, clear=clear)
