"""The headless command line: `train`, `validate`, `chat`, `study`, `status`, `export`, `report`, `serve` and `doctor`,
driving the same engine as the UI through its public surface (`from engine import ...`), as any front end does.

Exit codes: 0 success; 1 failure (bad data, bad settings, failed run; one sentence and a hint);
2 bad command-line usage; 130 a training run stopped with Ctrl-C (adapter saved).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine import (
    LANGS,
    EngineError,
    Event,
    LogEvent,
    ProgressEvent,
    RunState,
    StatusEvent,
    TrainConfig,
    add_export_commands,
    diagnose,
    parse_assignments,
    plan_lines,
    render,
    render_error,
    run_doctor,
    run_export,
    run_report,
)

if TYPE_CHECKING:
    from engine import Studio

COMMANDS = ("train", "validate", "chat", "study", "status", "export", "report", "serve", "doctor")
EXIT_OK, EXIT_FAILED, EXIT_STOPPED = 0, 1, 130


def default_lang() -> str:
    """The language of the user's locale (`LANG=zh_CN.UTF-8` gives zh) when the catalogue has it, else English."""
    prefix = os.environ.get("LANG", "")[:2].lower()
    return prefix if prefix in LANGS else "en"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the headless commands (train, validate, chat, study) and their options."""
    parser = argparse.ArgumentParser(prog="python app.py", description="Local fine-tuning studio")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lang", choices=LANGS, default=default_lang())
    common.add_argument("--debug", action="store_true", help="show technical details on failure")

    train = sub.add_parser("train", parents=[common], help="train an adapter without the browser")
    train.add_argument("--dataset", help="dataset file (default: the config's, else the bundled sample)")
    train.add_argument("--preset", help="a preset name from presets/")
    train.add_argument("--config", help="a config.yaml (e.g. from an earlier run)")
    train.add_argument("--method", choices=TrainConfig.__dataclass_fields__["method"].metadata["choices"],
                       help="sft, or dpo: preference tuning of an SFT adapter (--set init_adapter=RUN); the same as "
                            "--set method=...")
    train.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting; repeatable")
    train.add_argument("--run-dir", help="where to write the run (default: <runs dir>/<time>)")
    train.add_argument("--runs-dir", default="runs",
                       help="the runs folder (default: %(default)s; the app's --runs-dir to see the run there live)")
    train.add_argument("--dry-run", action="store_true",
                       help="print the resolved config, the warnings and the memory/time estimate; do not train")

    validate = sub.add_parser("validate", parents=[common], help="check a dataset file")
    validate.add_argument("path")
    validate.add_argument("--json", action="store_true")

    chat = sub.add_parser("chat", parents=[common], help="base vs adapter answers to one prompt")
    chat.add_argument("--run", required=True,
                      help="a run folder containing adapter/, or one of its checkpoints/checkpoint-N folders")
    chat.add_argument("--prompt", required=True)
    chat.add_argument("--baseline", help="the other side: a run folder or checkpoint folder (default: the base model;"
                                         " the JSON keeps its key \"base\")")
    chat.add_argument("--json", action="store_true")

    study = sub.add_parser("study", parents=[common], help="list blind studies or export one")
    study.add_argument("action", choices=("list", "export"))
    study.add_argument("--db", default="data/studies.db", help="the studies database (default: %(default)s)")
    study.add_argument("--study", type=int, help="the study id (export)")
    study.add_argument("--format", choices=("csv", "jsonl", "preferences"), default="csv",
                       help="votes with the unblinding key (csv/jsonl) or DPO preference pairs")
    study.add_argument("--out", help="the file to write (export)")

    status = sub.add_parser("status", parents=[common], help="list the runs, their states and live workers")
    status.add_argument("--runs-dir", default="runs", help="the runs folder (default: %(default)s)")
    status.add_argument("--json", action="store_true")

    doctor = sub.add_parser("doctor", parents=[common], help="check this computer: Python, torch, GPU, disks, hub")
    doctor.add_argument("--runs-dir", default="runs", help="the runs folder to check (default: %(default)s)")
    doctor.add_argument("--json", action="store_true")
    add_export_commands(sub, common, default_lang())
    return parser


def main(argv: list[str]) -> int:
    """Run the headless command in `argv` and return its exit code; an EngineError is worded on stderr (1)."""
    args = build_parser().parse_args(argv)
    _quiet_libraries(args.debug)
    try:
        return {"train": _train, "validate": _validate, "chat": _chat, "study": _study, "status": _status,
                "export": run_export, "report": run_report, "serve": _serve, "doctor": run_doctor}[args.command](args)
    except EngineError as error:
        print(render_error(error, args.lang), file=sys.stderr)
        return EXIT_FAILED


def _quiet_libraries(debug: bool) -> None:
    if debug:
        return
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


# ---- validate ---------------------------------------------------------------------------
def _validate(args) -> int:
    """Check a dataset file; exit 1 when it has errors."""
    from engine import Studio

    report = Studio().check_dataset(args.path).report
    if args.json:
        print(json.dumps(report.to_dict(args.lang), ensure_ascii=False, indent=2))
    else:
        print(f"{args.path}: format={report.format or '?'} rows={len(report.rows)} "
              f"usable={len(report.examples)} errors={len(report.errors)} warnings={len(report.warnings)}")
        for issue in report.errors + report.warnings:
            print(f"  [{issue.severity}] {issue.to_dict(args.lang)['message']}")
    return EXIT_FAILED if report.errors else EXIT_OK


# ---- train ------------------------------------------------------------------------------
def resolve_train_config(args, studio: "Studio") -> TrainConfig:
    """Defaults for this machine, then the preset, the config file, --dataset, --method and --set, in that order."""
    config = studio.default_config()
    if args.preset:
        config = studio.apply_preset(args.preset, config)
    if args.config:
        config = TrainConfig.from_yaml(args.config, base=config)
    if args.dataset:
        config = config.replace(dataset_path=args.dataset)
    if getattr(args, "method", None):  # callers' namespaces from before --method have none
        config = config.replace(method=args.method)
    return config.replace(**parse_assignments(args.assignments))


def _train(args) -> int:
    """Train in the foreground, printing events and the diagnosis; Ctrl-C stops the run (adapter saved)."""
    from engine import Studio

    studio = Studio(Path(args.run_dir).parent if args.run_dir else args.runs_dir)  # its folder's device lock
    config = resolve_train_config(args, studio)
    if args.dry_run:
        return _dry_run(studio, config, args.lang)
    run_id = studio.start(config, run_dir=args.run_dir)
    run_dir = studio.run_dir(run_id)
    print(f"run {run_id} -> {run_dir}", flush=True)
    interrupted = []

    def on_sigint(_signum, _frame):
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(True)
        studio.stop()
        print("\n" + render("cli_stopping", lang=args.lang), flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        state = _follow(studio, run_id, args.lang)
    finally:
        signal.signal(signal.SIGINT, previous)
    if state is RunState.FAILED:
        failure = studio.snapshot(run_id).error
        error = failure.to_error() if failure else EngineError("train_failed")
        print(render_error(error, args.lang), file=sys.stderr)
        if args.debug and (run_dir / "train.log").is_file():
            print((run_dir / "train.log").read_text(encoding="utf-8"), file=sys.stderr)
        return EXIT_FAILED
    adapter_dir = Path(run_dir) / "adapter"
    if (adapter_dir / "adapter_config.json").is_file():
        print(render("cli_adapter_saved", {"path": str(adapter_dir)}, args.lang))
    return EXIT_STOPPED if state is RunState.STOPPED else EXIT_OK


def _dry_run(studio, config: TrainConfig, lang: str) -> int:
    """Print the config as YAML and the pre-training check; exit 1 when it has errors."""
    plan = studio.plan(config)
    print(config.to_yaml())
    for line in plan_lines(plan, lang):
        print(line.replace("**", ""))
    return EXIT_FAILED if plan.errors else EXIT_OK


def _follow(studio, run_id: str, lang: str) -> RunState:
    """Print the run's events as they arrive, and the diagnosis whenever it changes, until the run ends."""
    cursor, points, said = 0, [], "warming_up"
    while True:
        events, cursor = studio.events_since(run_id, cursor)
        for event in events:
            line = format_event(event, lang)
            if line:
                print(line, flush=True)
            if isinstance(event, LogEvent):
                points.append(event.payload())
                found = diagnose(points)
                if found.kind != said:
                    said = found.kind
                    print(f">> {render(found.title_code, found.params, lang)} "
                          f"{render(found.advice_code, found.params, lang)}", flush=True)
        state = studio.snapshot(run_id).state
        if not state.is_live and not studio.is_live():
            return state
        time.sleep(0.5)


def format_event(event: Event, lang: str) -> str | None:
    """One terminal line for an event (None for events not worth a line)."""
    if isinstance(event, StatusEvent):
        return f"[{render('state_' + event.state.value, lang=lang)}]"
    if isinstance(event, ProgressEvent):
        return f"... {render(event.message, lang=lang)}"
    if isinstance(event, LogEvent):
        parts = [f"step {event.step}/{event.max_steps}", f"epoch {event.epoch or 0:.2f}"]
        for name, label, fmt in (("loss", "loss", ".4f"), ("eval_loss", "eval_loss", ".4f"),
                                 ("learning_rate", "lr", ".2e"), ("grad_norm", "grad_norm", ".3f"),
                                 ("tokens_per_second", "tok/s", ".0f")):
            value = getattr(event, name)
            if value is not None and math.isfinite(value):  # a non-finite value gets no number
                parts.append(f"{label} {value:{fmt}}")
        return "  ".join(parts)
    return None


# ---- chat -------------------------------------------------------------------------------
def _chat(args) -> int:
    """The baseline's (the base model, or `--baseline`) and the adapter's answers to one prompt (one model load
    serves both)."""
    from engine import Studio

    pair = Studio().compare(args.run, args.prompt, args.baseline)
    if args.json:
        print(json.dumps({"base": pair.base, "adapter": pair.adapter}, ensure_ascii=False))
    else:
        left = render("cli_baseline", {"path": args.baseline}, args.lang) if args.baseline else render(
            "cli_base", lang=args.lang)
        print(f"== {left} ==\n{pair.base}\n\n"
              f"== {render('cli_adapter', lang=args.lang)} ==\n{pair.adapter}")
    return EXIT_OK


# ---- study ------------------------------------------------------------------------------
def _study(args) -> int:
    """List the blind studies of a database, or export one's votes or preference pairs."""
    from engine import StudyStore

    if not Path(args.db).is_file():
        raise EngineError("study_db_missing", {"path": args.db})
    store = StudyStore(args.db)
    if args.action == "list":
        for study in store.studies():
            print(f"{study['id']}\t{study['name']}\t{study['created']}")
        return EXIT_OK
    if args.study is None or not args.out:
        raise EngineError("study_export_args")
    if args.format == "preferences":
        count = store.export_preferences(args.study, args.out)
        print(render("study_exported_pairs", {"count": count, "path": args.out}, args.lang))
    else:
        store.export_votes(args.study, args.out, args.format)
        print(render("study_exported_votes", {"path": args.out}, args.lang))
    return EXIT_OK


# ---- status -----------------------------------------------------------------------------
def _status(args) -> int:
    """List the runs of a runs folder, newest first: id, state, step, last loss and the live worker's pid."""
    from engine import Studio

    studio = Studio(args.runs_dir)
    runs = [{"run_id": run.run_id, "state": run.state.value, "step": run.step, "last_loss": run.last_loss,
             "worker_pid": studio.worker_pid(run.run_id)} for run in studio.list_runs()]
    if args.json:
        print(json.dumps(runs, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not runs:
        print(render("cli_no_runs", {"path": args.runs_dir}, args.lang))
    for run in runs:
        loss = f"{run['last_loss']:.4f}" if run["last_loss"] is not None else "-"
        print(f"{run['run_id']}\t{render('state_' + run['state'], lang=args.lang)}\tstep {run['step']}"
              f"\tloss {loss}\tpid {run['worker_pid'] or '-'}")
    return EXIT_OK


# ---- export, report, serve ----------------------------------------------------------------
def _serve(args) -> int:
    """Serve the run's adapter as an OpenAI-compatible API (`engine.serving.command.run_serve`)."""
    from engine import run_serve

    return run_serve(args)
