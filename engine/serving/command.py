"""`python app.py serve --run DIR`: the run's adapter behind the OpenAI-compatible API, served with uvicorn until
Ctrl-C. Loopback by default; any other host needs an API key (`--api-key` or STUDIO_API_KEY), or it is refused."""
from __future__ import annotations

import argparse
import os
import sys

from engine.errors import EngineError
from engine.locales import render, render_error

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
KEY_VARIABLE = "STUDIO_API_KEY"
EXIT_REFUSED = 2  # as argparse exits for a command line that cannot be served


def add_serve_arguments(parser: argparse.ArgumentParser, lang: str = "en") -> None:
    """The options of `serve` (help worded in `lang`)."""
    parser.add_argument("--run", required=True, metavar="DIR", help=render("cli_help_serve_run", lang=lang))
    parser.add_argument("--host", default="127.0.0.1", help=render("cli_help_serve_host", lang=lang))
    parser.add_argument("--port", type=int, default=8000, help=render("cli_help_serve_port", lang=lang))
    parser.add_argument("--api-key", metavar="KEY", help=render("cli_help_serve_api_key", lang=lang))


def run_serve(args: argparse.Namespace) -> int:
    """Serve the API until Ctrl-C (0); 2 for a host other computers reach without an API key, 1 when the run has
    no adapter or the port cannot be listened on."""
    lang = getattr(args, "lang", None) or "en"
    api_key = args.api_key or os.environ.get(KEY_VARIABLE) or None
    if args.host not in LOOPBACK and api_key is None:
        print(render("cli_serve_needs_key", {"host": args.host}, lang), file=sys.stderr)
        return EXIT_REFUSED
    from engine.export.source import ExportSource
    from engine.serving.openai_api import build_api
    from engine.system.device import DeviceLock
    from engine.training.runner import LOCK_FILE

    try:
        source = ExportSource.of(args.run)
    except EngineError as error:
        print(render_error(error, lang), file=sys.stderr)
        return 1
    app = build_api(source, api_key=api_key, lock=DeviceLock(source.run_dir.parent / LOCK_FILE))
    base, adapter = app.state.served.names
    print(render("cli_serve_ready", {"url": f"http://{address(args.host)}:{args.port}/v1", "adapter": adapter,
                                     "base": base}, lang), flush=True)
    return serve_until_stopped(app, args.host, args.port, lang)


def address(host: str) -> str:
    """`host` as a URL names it (an IPv6 address in brackets)."""
    return f"[{host.strip('[]')}]" if ":" in host else host


def serve_until_stopped(app, host: str, port: int, lang: str) -> int:
    """Serve `app` with uvicorn until Ctrl-C or SIGTERM (0); 1 when `host`:`port` cannot be listened on."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning"))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn raises Ctrl-C again once it has stopped: stopping was what was asked
        return 0
    except SystemExit:  # uvicorn's way of saying it could not listen (it logged why)
        print(render("cli_port_taken", {"host": host, "port": port}, lang), file=sys.stderr)
        return 1
    return 0
