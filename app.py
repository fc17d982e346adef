"""Composition root: `python app.py` serves the studio UI and its rater portal; `python app.py train|validate|chat`
runs headless; `python app.py demo --run DIR` serves a chat page presenting one adapter."""
from __future__ import annotations

import argparse
import getpass
import os
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when serving only: headless commands start without gradio
    from ui.login import Login

DATA_DIR = "data"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_UPLOAD_MB = 200


def main(argv: list[str]) -> int:
    """Run a headless command when `argv` starts with one, else serve the studio web UI and its rater portal on one
    server; returns the exit code.

    Serving on a non-local `--host`, or for a non-local `--public-url` or `--allowed-host`, is refused without the
    organiser's login (`--auth-file`, `STUDIO_AUTH`, `--auth`); an empty password is refused.
    """
    from engine import cli

    if argv and argv[0] in cli.COMMANDS:
        return cli.main(argv)
    if argv and argv[0] == "demo":  # a chat page presenting one adapter (ui/demo.py)
        from ui import demo

        return demo.main(argv[1:], cli.default_lang())
    parser = web_parser(cli.COMMANDS, cli.LANGS, cli.default_lang())
    args = parser.parse_args(argv)
    from engine import render
    from ui.login import Login

    try:
        options = serving_options(args)
        exposed = exposure(args, options)
        login = organiser_login(args.auth_file, args.auth, os.environ.get("STUDIO_AUTH"))
        if exposed and login is None and sys.stdin.isatty():  # asked here, it never shows in a process list
            typed = f"{input(render('cli_login_user', lang=args.lang))}:"
            login = organiser_login(None, typed + getpass.getpass(render("cli_login_password", lang=args.lang)), None)
    except ValueError as error:
        parser.error(render(*error.args, lang=args.lang))
    except (EOFError, KeyboardInterrupt):  # the prompt was left: nothing to serve
        print(file=sys.stderr)
        return 130
    if exposed and login is None:
        parser.error(render(*exposed, args.lang))
    return serve_web(args, Login(*login) if login else None, options)


def web_parser(commands: tuple[str, ...], langs: tuple[str, ...], lang: str) -> argparse.ArgumentParser:
    """The options of `python app.py` serving the web UI (new options worded in `lang`)."""
    from engine import render

    parser = argparse.ArgumentParser(prog="python app.py", description="Local fine-tuning studio (web UI). "
                                     f"Headless commands: {', '.join(commands)}. "
                                     "A chat page presenting one adapter: demo --run DIR.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--lang", choices=langs, default=lang)
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login (other users of the machine can read "
                        "a command line: prefer --auth-file or STUDIO_AUTH)")
    parser.add_argument("--auth-file", metavar="FILE", help="require the login in FILE (one line USER:PASSWORD)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--allow-dir", action="append", default=[], metavar="FOLDER",
                        help="a folder whose files the web UI may open, besides data/, the runs folder, uploads and "
                             "the bundled samples (repeatable)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help=render("cli_help_allowed_host", lang=lang))
    parser.add_argument("--public-url", metavar="URL", help=render("cli_help_public_url", lang=lang))
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_UPLOAD_MB, metavar="N",
                        help=render("cli_help_max_upload_mb", {"default": DEFAULT_UPLOAD_MB}, lang))
    return parser


def serving_options(args: argparse.Namespace) -> dict:
    """The server's keyword options from the command line: extra_hosts, max_file_size (bytes) and public_url
    (without a trailing '/'). Raises ValueError((message code, params)) for a value that cannot be used."""
    from ui.server import MB, host_pattern

    hosts = [host_pattern(name) for name in args.allowed_host]
    if args.max_upload_mb < 1:
        raise ValueError("cli_upload_limit", {"value": args.max_upload_mb})
    public_url = args.public_url
    if public_url is not None:
        parts = urllib.parse.urlsplit(public_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("cli_public_url", {"url": public_url})
        public_url = parts.geturl().rstrip("/")
    return {"extra_hosts": hosts, "max_file_size": args.max_upload_mb * MB, "public_url": public_url}


def exposure(args: argparse.Namespace, options: dict) -> tuple[str, dict] | None:
    """Why other computers could reach the studio, as the refusal to serve it without a login (message code,
    params): a non-local `--host`, or a non-local host named by `--public-url` or `--allowed-host` (a reverse proxy
    or tunnel forwarding to this computer); None when only this computer can reach it."""
    from ui.server import LOOPBACK_HOSTS, host_name

    if args.host not in LOOPBACK:
        return "cli_exposed_needs_login", {"host": args.host}
    named = [("--allowed-host", name) for name in args.allowed_host]
    if options["public_url"]:
        named.insert(0, ("--public-url", urllib.parse.urlsplit(options["public_url"]).hostname))
    return next((("cli_reached_needs_login", {"flag": flag, "host": name}) for flag, name in named
                 if host_name(name) not in LOOPBACK_HOSTS), None)


def serve_web(args: argparse.Namespace, login: Login | None, options: dict) -> int:
    """Serve the studio and the rater portal until stopped; 1 when the port is taken. transformers is imported
    once on a background thread meanwhile (through the loader's lock), so no page request races its first import."""
    from engine import render
    from engine.models.loader import import_transformers
    from ui.portal import PORTAL_PATH
    from ui.server import build_server, port_taken, serve

    if port_taken(args.host, args.port):
        print(render("cli_port_taken", {"host": args.host, "port": args.port}, args.lang), file=sys.stderr)
        return 1
    threading.Thread(target=import_transformers, name="import-transformers", daemon=True).start()
    app = build_server(web_studio(args.runs_dir, args.allow_dir), args.lang, login=login, host=args.host, **options)
    base = options["public_url"] or local_url(args.host, args.port)
    print(render("cli_serving", {"studio": f"{base}/", "portal": f"{base}{PORTAL_PATH}"}, args.lang), flush=True)
    serve(app, args.host, args.port)
    return 0


def local_url(host: str, port: int) -> str:
    """The address this computer's browser opens for a server on `host`:`port` (no trailing '/')."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def organiser_login(auth_file: str | None, auth: str | None, environment: str | None) -> tuple[str, str] | None:
    """(user, password) from the login file, else the STUDIO_AUTH value, else `--auth`; None when none is given.
    Raises ValueError((message code, params)) for an unreadable file, a value without ':' or an empty part."""
    source, value = None, None
    if auth_file:
        try:
            lines = Path(auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            reason = error.strerror or str(error)
            raise ValueError("cli_login_unreadable", {"path": auth_file, "reason": reason}) from None
        source, value = auth_file, (lines[0].strip() if lines else "")
    elif environment is not None:
        source, value = "STUDIO_AUTH", environment.strip()
    elif auth is not None:
        source, value = "--auth", auth
    if source is None:
        return None
    if ":" not in value:
        raise ValueError("cli_login_form", {"source": source})
    user, password = value.split(":", 1)
    if not user.strip() or not password:
        raise ValueError("cli_login_empty", {"source": source})
    return user.strip(), password


def web_studio(runs_dir: str, allowed: list[str]):
    """The studio the web UI drives: the paths its requests name must lie in data/, the runs folder, the upload
    folder, the bundled samples or an `--allow-dir` folder."""
    from gradio.utils import get_upload_folder

    from engine import SAMPLE_DATASET, Studio, Workspace

    workspace = Workspace.of(DATA_DIR, runs_dir, get_upload_folder(), SAMPLE_DATASET.parent, *allowed)
    return Studio(runs_dir, data_root=DATA_DIR, workspace=workspace)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
