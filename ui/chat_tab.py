"""Chat tab: a conversation answered side by side by the base model and a trained adapter.

Both sides use the adapter's saved chat template (the one used in training) and the same generation
settings; each side continues its own conversation.
"""
from __future__ import annotations

import gradio as gr

from engine.errors import EngineError
from engine.studio import Studio
from ui import gen_settings, present
from ui.i18n import Texts, t

MODEL_LANE = "model"  # one queue lane: generation requests never overlap on the model


def build(demo: gr.Blocks, studio: Studio, texts: Texts, lang_input: gr.Radio) -> None:
    texts.add(gr.Markdown(), value="chat_intro")
    runs = present.adapter_choices(studio.adapter_choices(), texts.lang)
    with gr.Row():
        run = texts.add(gr.Dropdown(choices=runs, value=runs[0][1] if runs else None, allow_custom_value=True,
                                    elem_id="chat-run", scale=4), label="run", info="run_info")
        refresh = texts.add(gr.Button(scale=1, elem_id="chat-refresh"), value="refresh")
    settings = gen_settings.build(texts, "gen-settings")
    with gr.Row():
        base_chat = texts.add(gr.Chatbot(elem_id="chat-base", height=380), label="answer_base")
        adapter_chat = texts.add(gr.Chatbot(elem_id="chat-adapter", height=380), label="answer_adapter")
    prompt = texts.add(gr.Textbox(lines=3, elem_id="chat-prompt"), label="prompt", placeholder="prompt_placeholder")
    with gr.Row():
        ask = texts.add(gr.Button(variant="primary", elem_id="chat-ask"), value="ask")
        clear = texts.add(gr.Button(elem_id="chat-clear"), value="chat_clear")

    def refresh_runs(lang: str):
        """Input: language. Output: the adapter picker: every run's final adapter and checkpoints, newest first."""
        choices = present.adapter_choices(studio.adapter_choices(), lang)
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    defaults = gen_settings.DEFAULTS

    def ask_both(lang: str, run_id: str | None, question: str, base_history: list | None, adapter_history: list | None,
                 new_tokens=defaults.max_new_tokens, temp=defaults.temperature, nucleus=defaults.top_p,
                 penalty=defaults.repetition_penalty, gen_seed=defaults.seed, system=""):
        """Inputs: language, run, question, both conversations so far, generation settings.
        Outputs (streamed as tokens arrive): the base and adapter answers, both conversations with the
        new turn, a cleared prompt."""
        if not run_id:
            raise gr.Error(t("no_runs", lang))
        if not question or not question.strip():
            raise gr.Error(t("empty_prompt", lang))
        params = gen_settings.params(new_tokens, temp, nucleus, penalty, gen_seed, system)
        history = (_messages(base_history), _messages(adapter_history))
        turn = {"role": "user", "content": question.strip()}
        base = adapter = ""
        try:
            for base, adapter in studio.stream_compare(run_id, question.strip(), params, history):
                yield (base, adapter, history[0] + [turn, {"role": "assistant", "content": base}],
                       history[1] + [turn, {"role": "assistant", "content": adapter}], "")
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None

    answers = [gr.Textbox(visible=False), gr.Textbox(visible=False)]
    refresh.click(refresh_runs, [lang_input], [run], api_name="chat_runs")
    demo.load(refresh_runs, [lang_input], [run], api_visibility="private")
    ask.click(ask_both, [lang_input, run, prompt, base_chat, adapter_chat] + settings,
              answers + [base_chat, adapter_chat, prompt], api_name="ask", concurrency_id=MODEL_LANE)
    clear.click(lambda: ([], []), None, [base_chat, adapter_chat], api_visibility="private")


def _messages(history: list | None) -> list[dict]:
    """Chatbot messages (content as a string or a list of text parts) as plain role/content dicts."""
    def text(content) -> str:
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))

    return [{"role": m["role"], "content": text(m["content"])} for m in (history or [])]
