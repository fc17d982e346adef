"""Chat tab: one question, answered side by side by the base model and a trained adapter."""
from __future__ import annotations

import gradio as gr

from engine.errors import EngineError
from engine.studio import Studio
from ui import present
from ui.i18n import Texts, t

MODEL_LANE = "model"  # one queue lane: generation requests never overlap on the model


def finished_runs(studio: Studio) -> list[str]:
    return [run.run_id for run in studio.list_runs() if run.has_adapter]


def build(demo: gr.Blocks, studio: Studio, texts: Texts, lang_input: gr.Radio) -> None:
    texts.add(gr.Markdown(), value="chat_intro")
    runs = finished_runs(studio)
    with gr.Row():
        run = texts.add(gr.Dropdown(choices=runs, value=runs[0] if runs else None, elem_id="chat-run", scale=4),
                        label="run")
        refresh = texts.add(gr.Button(scale=1, elem_id="chat-refresh"), value="refresh")
    prompt = texts.add(gr.Textbox(lines=3, elem_id="chat-prompt"), label="prompt", placeholder="prompt_placeholder")
    ask = texts.add(gr.Button(variant="primary", elem_id="chat-ask"), value="ask")
    with gr.Row():
        base = texts.add(gr.Textbox(lines=8, interactive=False, elem_id="answer-base"), label="answer_base")
        adapter = texts.add(gr.Textbox(lines=8, interactive=False, elem_id="answer-adapter"), label="answer_adapter")

    def refresh_runs():
        """Output: the run dropdown listing every finished run with an adapter, newest first."""
        choices = finished_runs(studio)
        return gr.Dropdown(choices=choices, value=choices[0] if choices else None)

    def ask_both(lang: str, run_id: str | None, question: str):
        """Inputs: language, run id, question. Outputs: base answer, adapter answer."""
        if not run_id:
            raise gr.Error(t("no_runs", lang))
        if not question or not question.strip():
            raise gr.Error(t("empty_prompt", lang))
        try:
            pair = studio.compare(run_id, question.strip())
        except EngineError as error:
            raise gr.Error(present.error_message(error, lang)) from None
        return pair.base, pair.adapter

    refresh.click(refresh_runs, None, [run], api_name="list_runs")
    demo.load(refresh_runs, None, [run], api_visibility="private")
    ask.click(ask_both, [lang_input, run, prompt], [base, adapter], api_name="ask", concurrency_id=MODEL_LANE)
