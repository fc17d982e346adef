"""Composition root: `python app.py` serves the studio UI; `python app.py train|validate|chat` runs headless."""
from __future__ import annotations

import argparse
import sys

DATA_DIR = "data"


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
    parser.add_argument("--allow-dir", action="append", default=[], metavar="FOLDER",
                        help="a folder whose files the web UI may open, besides data/, the runs folder, uploads and "
                             "the bundled samples (repeatable)")
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth needs the form USER:PASS")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.auth:
        parser.error(f"--host {args.host} would expose the studio to your network: add --auth USER:PASS")
    auth = tuple(args.auth.split(":", 1)) if args.auth else None

    from ui import build_app

    app = build_app(web_studio(args.runs_dir, args.allow_dir), lang=args.lang)
    app.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port, auth=auth,
                                                  share=False)
    return 0


def web_studio(runs_dir: str, allowed: list[str]):
    """The studio the web UI drives: the paths its requests name must lie in data/, the runs folder, the upload
    folder, the bundled samples or an `--allow-dir` folder."""
    from gradio.utils import get_upload_folder

    from engine import SAMPLE_DATASET, Studio, Workspace

    workspace = Workspace.of(DATA_DIR, runs_dir, get_upload_folder(), SAMPLE_DATASET.parent, *allowed)
    return Studio(runs_dir, data_root=DATA_DIR, workspace=workspace)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
