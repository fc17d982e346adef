"""The command line's `export` and `report` commands (and the `serve` command's parser): an adapter taken out of the
studio from a terminal, with one progress line per step. `engine/cli.py` wires them in."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.locales import catalogue_text, render
from engine.serving.command import add_serve_arguments
from engine.studio import Studio

EXPORT_FORMATS = ("package", "merged", "gguf", "ollama", "vllm")
EXIT_OK = 0


def add_export_commands(sub, common: argparse.ArgumentParser, lang: str) -> None:
    """The `export`, `report` and `serve` commands and their options."""
    run_help = "a run folder containing adapter/, or one of its checkpoints/checkpoint-N folders"
    export = sub.add_parser("export", parents=[common], help="take an adapter out: package, merged model, GGUF, "
                            "Ollama Modelfile, vLLM line")
    export.add_argument("--run", required=True, help=run_help)
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--type", default="q8_0", help="the GGUF type (gguf, ollama): f16, bf16, q8_0, q4_0, or "
                        "q4_k_m with llama-quantize on PATH (default: %(default)s)")
    export.add_argument("--max-shard-size", default="2GB", help="the merged model's shard size (default: %(default)s)")
    export.add_argument("--json", action="store_true", help="print the written paths and commands as JSON")

    report = sub.add_parser("report", parents=[common], help="write the run's self-contained HTML report")
    report.add_argument("--run", required=True, help=run_help)
    report.add_argument("--json", action="store_true", help="print the report's path as JSON")

    serve = sub.add_parser("serve", parents=[common], help="an OpenAI-compatible API for the adapter")
    add_serve_arguments(serve, lang)


def terminal_progress(lang: str, stream=None):
    """A progress callback printing one line per step (`... <step>`) as the step changes, not per fraction, to
    `stream` (default: standard output)."""
    said: list[str] = []

    def report(code: str, _fraction: float) -> None:
        if not said or said[-1] != code:
            said.append(code)
            print(f"... {_step_text(code, lang)}", file=stream or sys.stdout, flush=True)

    return report


def _step_text(code: str, lang: str) -> str:
    """The words of a progress step's catalogue code (`engine.<code>`), or the code itself when it has none."""
    try:
        return catalogue_text(code, lang)
    except KeyError:
        return code


def _studio_of_run(folder: str) -> Studio:
    """A studio on the runs folder holding `folder` (a run folder, or one of its `checkpoints/checkpoint-N`
    folders), so that its device lock is the one the app on that runs folder uses (as `_train`'s is)."""
    path = Path(folder).resolve()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path
    return Studio(run_dir.parent)


def run_export(args) -> int:
    """Write one export of a run's adapter and print what was written (paths, commands, warnings)."""
    studio = _studio_of_run(args.run)
    source = studio.export_source_at(args.run)
    progress = terminal_progress(args.lang, sys.stderr if args.json else None)
    written = _write_export(studio, source, args, progress)
    if args.json:
        print(json.dumps(written, ensure_ascii=False, indent=2))
        return EXIT_OK
    for key in ("package", "merged", "gguf", "modelfile"):
        if key in written:
            print(render("cli_export_written", {"path": written[key]}, args.lang))
    for line in written.get("notes", []) + written.get("warnings", []):
        print(f"  ! {line}")
    if "command" in written:
        print(written["command"])
    return EXIT_OK


def _write_export(studio, source, args, progress) -> dict:
    """The export `args.format` of `source`, written; returns its paths, command and worded notes as plain values."""
    lang = args.lang
    if args.format == "package":
        return {"package": str(studio.export_adapter_package(source, progress))}
    if args.format == "merged":
        notes = [render(code, params, lang) for code, params in studio.merge_notes(source)]
        return {"merged": str(studio.export_merged(source, args.max_shard_size, progress)), "notes": notes}
    if args.format == "gguf":
        return {"gguf": str(studio.export_gguf(source, args.type, progress))}
    if args.format == "ollama":
        modelfile, command = studio.export_modelfile(source, args.type, progress)
        gguf = Path(modelfile).parent / f"{source.run_id}-{args.type.lower()}.gguf"
        return {"gguf": str(gguf), "modelfile": str(modelfile), "command": command}
    advice = studio.vllm_advice(source)
    return {"command": advice.command, "warnings": [render(code, params, lang) for code, params in advice.warnings]}


def run_report(args) -> int:
    """Write the run's HTML report (sample answers generated now) and print its path."""
    studio = _studio_of_run(args.run)
    progress = terminal_progress(args.lang, sys.stderr if args.json else None)
    path = studio.write_report(studio.export_source_at(args.run), args.lang, progress)
    if args.json:
        print(json.dumps({"report": str(path)}, ensure_ascii=False))
    else:
        print(render("cli_export_written", {"path": str(path)}, args.lang))
    return EXIT_OK
