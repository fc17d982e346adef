"""`python app.py demo --run DIR`: a clean, single-purpose chat page for presenting one trained adapter: the
presenter's title, short description and example questions, the adapter's answer streamed as it is written
(optionally beside the base model's, `--side-by-side`), in 中文 or English.

It is served under the studio's rules: this computer only by default, and a login (`--auth-file`, STUDIO_AUTH,
`--auth`) before it may be exposed (`app.py`'s `organiser_login` and `exposure`); requests naming a foreign host
are refused, and, as at the rater portal, the page takes no files (gradio's upload routes are not found and its
upload and cache folders are not served) and no request over `PortalGuard`'s limit (`ui/server.py`). Answers come
from the studio with its default settings (greedy), on the runs folder's device lock, so a run training there
makes the page say the model is busy; the model reads the last HISTORY_TURNS exchanges of the conversation.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi
import gradio as gr

from engine import LANGS, EngineError, GenParams, Studio, render, render_error
from ui.chat_tab import messages_of
from ui.gen_settings import MAX_ANSWER_TOKENS
from ui.i18n import LANG_CHOICES, Texts, t
from ui.login import Login
from ui.server import (
    PORTAL_UPLOAD_LIMIT,
    UPLOAD_CLEANUP,
    HostAllowList,
    PortalGuard,
    allowed_hosts,
    host_pattern,
    no_docs,
    port_taken,
    serve,
    upload_folders,
    without_file_routes,
)
from ui.wiring import bind, worded_errors

DEFAULT_EXAMPLES = ("demo_example_returns", "demo_example_order", "demo_example_help")  # catalogue keys
DEMO_CONCURRENCY = 1  # one answer at a time: generation shares one model
HISTORY_TURNS = 8  # exchanges (a question and its answer) of the conversation kept and shown to the model


@dataclass
class DemoView:
    """The page's components that handlers fill."""

    base_chat: Any  # None unless side by side
    adapter_chat: Any
    prompt: Any


def open_run(path: str | Path) -> tuple[Studio, str]:
    """A studio on the runs folder holding `path` (a run folder, or one of its `checkpoints/checkpoint-N`
    folders) and the adapter choice naming it; raises `run_not_found` when no adapter is there."""
    folder = Path(path).resolve()
    checkpoint = folder.parent.name == "checkpoints"
    run = folder.parent.parent if checkpoint else folder
    choice = f"{run.name}@{folder.name}" if checkpoint else run.name
    studio = Studio(run.parent, data_root=run.parent.parent / "data")
    studio.adapter_path(choice)
    return studio, choice


@worded_errors
def ask(studio: Studio, view: DemoView, choice: str, params: GenParams, lang: str, question: str,
        base_history: list | None, adapter_history: list | None):
    """Inputs: language, question, both conversations so far (the base's is empty unless side by side); the
    presenter's generation settings are bound (`params`). Outputs (streamed as tokens arrive): the conversations with
    the new turn, a cleared prompt."""
    if not question or not question.strip():
        raise gr.Error(t("empty_prompt", lang))
    turn = {"role": "user", "content": question.strip()}
    history = (recent(base_history), recent(adapter_history))
    base_turns, adapter_turns = history[0] + [turn], history[1] + [turn]
    if view.base_chat is None:
        for adapter in studio.stream_answer(choice, adapter_turns, params, "adapter"):
            yield {view.adapter_chat: adapter_turns + [{"role": "assistant", "content": adapter}], view.prompt: ""}
        return
    for base, adapter in studio.stream_compare(choice, turn["content"], params, history):
        yield {view.base_chat: base_turns + [{"role": "assistant", "content": base}],
               view.adapter_chat: adapter_turns + [{"role": "assistant", "content": adapter}], view.prompt: ""}


def recent(history: list | None) -> list[dict]:
    """The conversation's messages from the start of its last HISTORY_TURNS - 1 exchanges (the new question makes
    the last one)."""
    messages = messages_of(history)
    starts = [index for index, message in enumerate(messages) if message["role"] == "user"]
    return messages[starts[-(HISTORY_TURNS - 1)]:] if len(starts) >= HISTORY_TURNS else messages


def clear(view: DemoView) -> dict:
    """Inputs: none. Outputs: the conversations, emptied."""
    return {chat: [] for chat in (view.base_chat, view.adapter_chat) if chat is not None}


def build_demo(studio: Studio, choice: str, *, title: str | None = None, description: str | None = None,
               examples: list[str] | tuple[str, ...] = (), side_by_side: bool = False, lang: str = "en",
               max_new_tokens: int = GenParams.max_new_tokens) -> gr.Blocks:
    """The demo page for adapter `choice` of `studio`, worded in `lang` with a switch between 中文 and English,
    answering in at most `max_new_tokens` tokens. Without `title`, `description` or `examples`, the catalogue's
    words are used (and follow the switch)."""
    texts = Texts(lang)
    with gr.Blocks(title=title or t("demo_title", lang, run=choice)) as page:
        with gr.Row(equal_height=True):
            heading = gr.Markdown(elem_id="demo-title")
            if title:
                heading.value = f"# {title}"
            else:
                texts.add(heading, value="demo_heading")
            language = texts.add(gr.Radio(choices=LANG_CHOICES, value=lang, elem_id="demo-language", scale=0,
                                          min_width=220), label="language")
        intro = gr.Markdown(elem_id="demo-description")
        if description:
            intro.value = description
        else:
            texts.add(intro, value="demo_description")
        view = DemoView(None, None, None)
        with gr.Row():
            if side_by_side:
                view.base_chat = texts.add(gr.Chatbot(elem_id="demo-base", height=420), label="demo_base")
            view.adapter_chat = texts.add(gr.Chatbot(elem_id="demo-adapter", height=420), label="demo_adapter")
        view.prompt = texts.add(gr.Textbox(lines=2, elem_id="demo-prompt"), label="demo_prompt",
                                placeholder="demo_placeholder")
        with gr.Row():
            send = texts.add(gr.Button(variant="primary", elem_id="demo-send"), value="demo_send")
            reset = texts.add(gr.Button(elem_id="demo-clear"), value="demo_clear")
        shown = list(examples) or [t(key, lang) for key in DEFAULT_EXAMPLES]
        texts.add(gr.Examples([[question] for question in shown], [view.prompt]).dataset, label="demo_examples")
        chats = [chat for chat in (view.base_chat, view.adapter_chat) if chat is not None]
        base_input = view.base_chat if side_by_side else gr.State([])
        answering = bind(ask, studio, view, choice, GenParams(max_new_tokens=max_new_tokens))
        gr.on([send.click, view.prompt.submit], answering,
              [language, view.prompt, base_input, view.adapter_chat], [*chats, view.prompt], api_name="ask")
        reset.click(bind(clear, view), None, chats, api_visibility="private")
        language.input(texts.updates, [language], texts.components, api_visibility="private", queue=False)
    return page


def answer_length(lang: str):
    """The `--max-new-tokens` converter: a whole number from 1 to MAX_ANSWER_TOKENS, else argparse's refusal
    worded in `lang`."""
    def convert(text: str) -> int:
        """`text` as the answers' length in tokens."""
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_ANSWER_TOKENS:
            raise argparse.ArgumentTypeError(render("cli_demo_bad_max_new_tokens",
                                                    {"value": text, "most": MAX_ANSWER_TOKENS}, lang))
        return value

    return convert


def demo_parser(lang: str) -> argparse.ArgumentParser:
    """The options of `python app.py demo` (help worded in `lang`)."""
    parser = argparse.ArgumentParser(prog="python app.py demo", description=render("cli_help_demo", lang=lang))
    parser.add_argument("--run", required=True, metavar="DIR", help=render("cli_help_demo_run", lang=lang))
    parser.add_argument("--title", help=render("cli_help_demo_title", lang=lang))
    parser.add_argument("--description", help=render("cli_help_demo_description", lang=lang))
    parser.add_argument("--example", action="append", default=[], metavar="QUESTION",
                        help=render("cli_help_demo_example", lang=lang))
    parser.add_argument("--side-by-side", action="store_true", help=render("cli_help_demo_side_by_side", lang=lang))
    parser.add_argument("--max-new-tokens", type=answer_length(lang), default=GenParams.max_new_tokens, metavar="N",
                        help=render("cli_help_demo_max_new_tokens", {"default": GenParams.max_new_tokens}, lang=lang))
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--lang", choices=LANGS, default=lang)
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login (prefer --auth-file or STUDIO_AUTH)")
    parser.add_argument("--auth-file", metavar="FILE", help="require the login in FILE (one line USER:PASSWORD)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help=render("cli_help_allowed_host", lang=lang))
    return parser


def demo_server(page: gr.Blocks, host: str, extra_hosts: list[str], login: Login | None) -> fastapi.FastAPI:
    """The demo page at `/` for requests naming this computer, `host` or `extra_hosts`, behind `login` when given:
    it takes no files (its upload routes are not found, gradio's upload and cache folders not served, its old
    uploads deleted) and no request over `PortalGuard`'s limit."""
    app = fastapi.FastAPI(**no_docs())
    app.add_middleware(PortalGuard, guarded=lambda _path: True)
    app.add_middleware(HostAllowList, allowed_hosts=allowed_hosts(host, extra_hosts))  # added last, it runs first
    without_file_routes(app)
    page.delete_cache = UPLOAD_CLEANUP  # read when mounted
    gr.mount_gradio_app(app, page.queue(default_concurrency_limit=DEMO_CONCURRENCY), "/", auth=login,
                        max_file_size=PORTAL_UPLOAD_LIMIT, footer_links=[], blocked_paths=upload_folders(),
                        app_kwargs=no_docs())
    return app


def main(argv: list[str], lang: str = "en") -> int:
    """Serve the demo page until Ctrl-C (0); 1 when the run has no adapter or the port is taken; a host other
    computers reach without a login is refused (2, as argparse refuses). `lang` words the help and is the
    default `--lang`."""
    from app import exposure, local_url, organiser_login

    parser = demo_parser(lang)
    args = parser.parse_args(argv)
    try:
        extra_hosts = [host_pattern(name) for name in args.allowed_host]
        login = organiser_login(args.auth_file, args.auth, os.environ.get("STUDIO_AUTH"))
    except ValueError as error:
        parser.error(render(*error.args, lang=args.lang))
    exposed = exposure(args, {"public_url": None})
    if exposed and login is None:
        parser.error(render(*exposed, args.lang))
    try:
        studio, choice = open_run(args.run)
    except EngineError as error:
        print(render_error(error, args.lang), file=sys.stderr)
        return 1
    if port_taken(args.host, args.port):
        print(render("cli_port_taken", {"host": args.host, "port": args.port}, args.lang), file=sys.stderr)
        return 1
    page = build_demo(studio, choice, title=args.title, description=args.description, examples=args.example,
                      side_by_side=args.side_by_side, lang=args.lang, max_new_tokens=args.max_new_tokens)
    print(render("cli_demo_serving", {"url": f"{local_url(args.host, args.port)}/"}, args.lang), flush=True)
    serve(demo_server(page, args.host, extra_hosts, Login(*login) if login else None), args.host, args.port)
    return 0
