"""`python app.py export|report|serve`: the parser, the JSON output, worded failures (exit 1); on a real trained run,
a GGUF with its Modelfile from the command line."""
from __future__ import annotations

import json

import pytest

from engine import cli
from engine.export.command import terminal_progress
from engine.locales import render
from engine.system.device import DeviceLock
from engine.training.runner import LOCK_FILE
from tests.test_export_desk import fake_run


def test_the_export_commands_join_the_existing_ones_unchanged():
    assert cli.COMMANDS[:5] == ("train", "validate", "chat", "study", "status")
    assert {"export", "report", "serve"} <= set(cli.COMMANDS)
    parser = cli.build_parser()
    args = parser.parse_args(["export", "--run", "runs/r1", "--format", "gguf", "--type", "f16", "--json"])
    assert (args.format, args.type, args.max_shard_size, args.json) == ("gguf", "f16", "2GB", True)
    assert parser.parse_args(["report", "--run", "runs/r1", "--lang", "zh"]).lang == "zh"
    served = parser.parse_args(["serve", "--run", "runs/r1"])
    assert (served.host, served.port) == ("127.0.0.1", 8000)
    with pytest.raises(SystemExit) as usage:
        parser.parse_args(["export", "--run", "runs/r1", "--format", "onnx"])
    assert usage.value.code == 2


def test_the_vllm_line_is_printed_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_dir = fake_run(tmp_path / "runs")
    assert cli.main(["export", "--run", str(run_dir), "--format", "vllm", "--json"]) == cli.EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["command"].startswith("vllm serve ") and str(run_dir / "adapter") in printed["command"]
    assert isinstance(printed["warnings"], list)


def test_an_export_takes_the_device_lock_of_the_runs_own_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the app's runs folder is elsewhere: the command line must still wait for it
    (tmp_path / "studio").mkdir()
    run_dir = fake_run(tmp_path / "studio" / "runs")
    app_lock = DeviceLock(run_dir.parent / LOCK_FILE)
    assert app_lock.acquire("chat")  # the app on that runs folder generates
    try:
        for command in (["export", "--format", "merged"], ["export", "--run", str(run_dir / "checkpoints" /
                                                                                "checkpoint-2"), "--format", "gguf"]):
            argv = command if "--run" in command else [*command, "--run", str(run_dir)]
            assert cli.main(argv) == cli.EXIT_FAILED
            assert render("busy_generating", {}, "en") in capsys.readouterr().err
    finally:
        app_lock.release()
    assert not (run_dir / "export").exists() and not (tmp_path / "runs").exists()


def test_a_folder_without_an_adapter_fails_in_one_worded_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    for command in (["export", "--format", "package"], ["report"]):
        assert cli.main([*command, "--run", str(tmp_path / "empty"), "--lang", "en"]) == cli.EXIT_FAILED
        error = capsys.readouterr().err
        assert error.startswith(render("run_not_found", {"path": str(tmp_path / "empty")}, "en"))
        assert "Traceback" not in error


def test_progress_prints_one_line_per_step(capsys):
    progress = terminal_progress("zh")
    for code, fraction in (("engine.export_step_samples", 0.1), ("engine.export_step_samples", 0.5),
                           ("engine.export_step_done", 1.0)):
        progress(code, fraction)
    assert capsys.readouterr().out.splitlines() == [f"... {render('export_step_samples', lang='zh')}",
                                                     f"... {render('export_step_done', lang='zh')}"]


@pytest.mark.slow
def test_ollama_export_from_the_command_line(run_copy, monkeypatch, capsys):
    monkeypatch.chdir(run_copy.parent.parent)
    assert cli.main(["export", "--run", str(run_copy), "--format", "ollama", "--type", "f16", "--json"]) == 0
    captured = capsys.readouterr()
    written = json.loads(captured.out)
    assert written["gguf"].endswith(f"{run_copy.name}-f16.gguf") and written["modelfile"].endswith("Modelfile")
    assert written["command"].startswith("ollama create ")
    assert captured.err.startswith("... ")  # progress goes to stderr when stdout carries the JSON
