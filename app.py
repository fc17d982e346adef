"""Composition root: `python app.py` serves the studio UI; `python app.py train|validate|chat` runs headless."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    """Run a headless command when `argv` starts with one, else serve the studio web UI; returns the exit code.

    Serving on a non-local `--host` is refused unless `--auth USER:PASS` is given.
    """
    from engine import cli

    if argv and argv[0] in cli.COMMANDS:
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="python app.py", description="Local fine-tuning studio (web UI). "
                                     f"Headless commands: {', '.join(cli.COMMANDS)}.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--lang", choices=cli.LANGS, default=cli.default_lang())
    parser.add_argument("--auth", metavar="USER:PASS", help="require a login (always use this with --host 0.0.0.0)")
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth needs the form USER:PASS")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.auth:
        parser.error(f"--host {args.host} would expose the studio to your network: add --auth USER:PASS")
    auth = tuple(args.auth.split(":", 1)) if args.auth else None

    from engine import Studio
    from ui import build_app

    app = build_app(Studio(args.runs_dir), lang=args.lang)
    app.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port, auth=auth)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
