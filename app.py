"""Composition root: `python app.py` serves the studio UI; `python app.py train|validate|chat` runs headless."""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

DATA_DIR = "data"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str]) -> int:
    """Run a headless command when `argv` starts with one, else serve the studio web UI; returns the exit code.

    Serving on a non-local `--host` is refused without the organiser's login (`--auth-file`, `STUDIO_AUTH`,
    `--auth`); an empty password is refused.
    """
    from engine import cli

    if argv and argv[0] in cli.COMMANDS:
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="python app.py", description="Local fine-tuning studio (web UI). "
                                     f"Headless commands: {', '.join(cli.COMMANDS)}.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--lang", choices=cli.LANGS, default=cli.default_lang())
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login (other users of the machine can read "
                        "a command line: prefer --auth-file or STUDIO_AUTH)")
    parser.add_argument("--auth-file", metavar="FILE", help="require the login in FILE (one line USER:PASSWORD)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--allow-dir", action="append", default=[], metavar="FOLDER",
                        help="a folder whose files the web UI may open, besides data/, the runs folder, uploads and "
                             "the bundled samples (repeatable)")
    args = parser.parse_args(argv)
    from engine import render
    from ui.login import Login

    exposed = args.host not in LOOPBACK
    try:
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
        parser.error(render("cli_exposed_needs_login", {"host": args.host}, args.lang))

    from ui import build_app

    app = build_app(web_studio(args.runs_dir, args.allow_dir), lang=args.lang)
    app.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port, share=False,
                                                  auth=Login(*login) if login else None)
    return 0


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
