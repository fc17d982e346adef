"""Generation settings (max new tokens, temperature, top-p, repetition penalty, seed, system prompt) as
one accordion, shared by the Chat tab and the blind study set-up."""
from __future__ import annotations

import gradio as gr

from engine import GenParams
from ui.page import Page

DEFAULTS = GenParams()
MAX_ANSWER_TOKENS = 1024  # the longest answer the Chat tab's slider and the demo's --max-new-tokens allow


def build(page: Page, elem_id: str) -> list:
    """The accordion's components, in the order `params` takes their values."""
    texts = page.texts
    with texts.add(gr.Accordion(open=False, elem_id=elem_id), label="gen_settings"):
        with gr.Row():
            max_new_tokens = texts.add(gr.Slider(16, MAX_ANSWER_TOKENS, value=DEFAULTS.max_new_tokens, step=16),
                                       label="gen_max_new_tokens")
            temperature = texts.add(gr.Slider(0, 2, value=DEFAULTS.temperature, step=0.05), label="gen_temperature",
                                    info="gen_temperature_info")
            top_p = texts.add(gr.Slider(0.05, 1, value=DEFAULTS.top_p, step=0.05), label="gen_top_p")
            repetition_penalty = texts.add(gr.Slider(1, 2, value=DEFAULTS.repetition_penalty, step=0.05),
                                           label="gen_repetition_penalty")
            seed = texts.add(gr.Number(value=DEFAULTS.seed, precision=0), label="gen_seed")
        system_prompt = texts.add(gr.Textbox(value="", lines=2), label="gen_system_prompt",
                                  info="gen_system_prompt_info")
    return [max_new_tokens, temperature, top_p, repetition_penalty, seed, system_prompt]


def params(new_tokens=DEFAULTS.max_new_tokens, temp=DEFAULTS.temperature, nucleus=DEFAULTS.top_p,
           penalty=DEFAULTS.repetition_penalty, gen_seed=DEFAULTS.seed, system="") -> GenParams:
    """The GenParams for the accordion's values (missing ones keep their defaults)."""
    return GenParams(max_new_tokens=int(new_tokens), temperature=float(temp), top_p=float(nucleus),
                     repetition_penalty=float(penalty), seed=int(gen_seed or 0), system_prompt=system or "")
