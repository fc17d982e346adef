"""The headless CLI (`python app.py validate|train`), run as a user would: a subprocess from the repo root (or, for
most `validate` cases, `cli.main` in this process, the function app.py hands the command to)."""
from __future__ import annotations

import ast
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

import engine
from engine import cli
from engine.config import TrainConfig
from engine.studio import Studio
from engine.training.events import ErrorEvent, LogEvent, ProgressEvent, RunState, StatusEvent
from tests.conftest import FakeJob

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "engine" / "data" / "samples" / "customer_service.jsonl"
CJK = re.compile(r"[\u4e00-\u9fff]")


def app_env(lang: str = "C.UTF-8") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env.update(LANG=lang, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    return env


def app(*args: str, lang: str = "C.UTF-8", timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=app_env(lang), capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def validate_here(capsys, *args: str) -> subprocess.CompletedProcess:
    """`python app.py validate ARGS` run in this process (`cli.main`, the function app.py hands a command to,
    without starting Python and importing transformers again): its exit code and what it printed."""
    code = cli.main(["validate", *args])
    printed = capsys.readouterr()
    return subprocess.CompletedProcess(["validate", *args], code, printed.out, printed.err)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def write_bad_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "q", "output": "a"}\n'
                    '{"instruction": "q2"}\n'
                    '{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    return path


# ---- validate -------------------------------------------------------------------------------
def test_validate_sample():
    result = app("validate", str(SAMPLE))
    assert result.returncode == 0, output(result)
    assert "format=alpaca" in result.stdout and "rows=120" in result.stdout and "errors=0" in result.stdout
    assert "Traceback" not in output(result)


def test_validate_sample_json(capsys):
    result = validate_here(capsys, str(SAMPLE), "--json")
    assert result.returncode == 0, output(result)
    report = json.loads(result.stdout)
    assert set(report) == {"format", "rows", "errors", "warnings", "kind", "encoding", "delimiter"}  # 3 added
    assert report == {"format": "alpaca", "rows": 120, "errors": [], "warnings": [], "kind": "sft",
                      "encoding": "utf-8", "delimiter": None}


def test_validate_errors_json(tmp_path, capsys):
    result = validate_here(capsys, str(write_bad_dataset(tmp_path)), "--json")
    assert result.returncode == 1, output(result)
    report = json.loads(result.stdout)
    assert set(report) == {"format", "rows", "errors", "warnings", "kind", "encoding", "delimiter"}
    assert report["rows"] == 3
    assert [(e["code"], e["row"], e["field"]) for e in report["errors"]] == [("dataset_missing_field", 2, "output")]
    warnings = [(w["code"], w["row"]) for w in report["warnings"]]
    assert ("dataset_duplicate", 3) in warnings
    assert ("dataset_too_few_rows", None) in warnings  # the dataset-level checks run too
    for issue in report["errors"] + report["warnings"]:
        assert set(issue) == {"code", "row", "field", "message"}
    assert "Row 2" in report["errors"][0]["message"]


def test_validate_errors_text(tmp_path, capsys):
    result = validate_here(capsys, str(write_bad_dataset(tmp_path)))
    assert result.returncode == 1
    assert "errors=1" in result.stdout and "dataset_duplicate" not in result.stdout
    assert "[warning] Row 3 repeats row 1 exactly." in result.stdout
    assert "[error] Row 2: the field 'output' is missing or empty." in result.stdout
    assert "Traceback" not in output(result)


def test_validate_bad_json_line_is_one_based(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "fine"}\n{"text": \n', encoding="utf-8")
    result = validate_here(capsys, str(path), "--json")
    assert result.returncode == 1
    assert [(e["code"], e["row"]) for e in json.loads(result.stdout)["errors"]] == [("dataset_bad_json", 2)]


def test_validate_chinese(tmp_path, capsys):
    result = validate_here(capsys, str(write_bad_dataset(tmp_path)), "--json", "--lang", "zh")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    message = report["errors"][0]["message"]
    assert CJK.search(message) and "第 2 行" in message
    assert report["errors"][0]["code"] == "dataset_missing_field"  # codes are not translated
    english = json.loads(validate_here(capsys, str(write_bad_dataset(tmp_path)), "--json", "--lang", "en").stdout)
    assert english["errors"][0]["message"] != message


def test_validate_language_from_the_environment(tmp_path):
    result = app("validate", str(tmp_path / "missing.jsonl"), lang="zh_CN.UTF-8")
    assert result.returncode == 1
    assert "不存在" in result.stdout


def test_validate_missing_file(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"
    result = validate_here(capsys, str(missing))
    assert result.returncode == 1
    text = output(result)
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if "does not exist" in line]
    assert len(lines) == 1 and str(missing) in lines[0]


def test_validate_unsupported_type(tmp_path, capsys):
    path = tmp_path / "notes.docx"
    path.write_text("hello", encoding="utf-8")
    result = validate_here(capsys, str(path), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0]["code"] == "dataset_bad_type"


def test_usage_error_exits_2():
    result = app("validate")
    assert result.returncode == 2
    assert "Traceback" not in output(result)


# ---- train: refusals (fail before any model is loaded) --------------------------------------
def test_train_unknown_set_key(tmp_path):
    result = app("train", "--set", "lora_rank=8", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, output(result)
    assert "lora_rank" in result.stderr and "lora_r" in result.stderr
    assert "Traceback" not in output(result)
    assert not (tmp_path / "run").exists()


def test_train_missing_dataset(tmp_path):
    result = app("train", "--dataset", "missing.jsonl", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, output(result)
    assert "missing.jsonl" in result.stderr
    assert "Traceback" not in output(result)
    assert not (tmp_path / "run").exists()


def test_train_unknown_preset(tmp_path):
    result = app("train", "--preset", "no-such-preset", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 1, output(result)
    assert "no-such-preset" in result.stderr and "smoke-test" in result.stderr
    assert "Traceback" not in output(result)


def test_train_unusable_dataset_and_bad_value_in_process(tmp_path, capsys):
    """The same refusals in-process (cheaper): exit 1 and one worded line on stderr."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "q"}\n{"instruction": "r", "output": ""}\n', encoding="utf-8")
    assert cli.main(["train", "--dataset", str(bad), "--run-dir", str(tmp_path / "r"), "--lang", "en"]) == 1
    err = capsys.readouterr().err
    assert "Row 1: the field 'output' is missing or empty." in err
    assert cli.main(["train", "--set", "lora_r=many", "--lang", "en"]) == 1
    err = capsys.readouterr().err
    assert "lora_r" in err and "many" in err
    assert cli.main(["train", "--set", "noequals", "--lang", "zh"]) == 1
    assert "key=value" in capsys.readouterr().err
    assert cli.main(["train", "--set", "lora_r=0", "--dataset", str(SAMPLE), "--lang", "en"]) == 1
    assert "lora_r = 0 is outside the allowed range" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_infinite_int_value(capsys):
    assert cli.main(["train", "--set", "lora_r=inf", "--lang", "en"]) == 1


def test_resolve_train_config_order(tmp_path, monkeypatch):
    import engine.system.device

    monkeypatch.setattr(engine.system.device, "cuda_available", lambda: False)
    config_file = tmp_path / "c.yaml"
    config_file.write_text("lora_r: 4\nmax_steps: 9\ndataset_path: from-config.jsonl\n", encoding="utf-8")
    args = Namespace(preset="smoke-test", config=str(config_file), dataset="from-flag.jsonl",
                     assignments=["max_steps=5"])
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    config = cli.resolve_train_config(args, studio)
    assert config.max_length == 128  # smoke-test over cpu-demo's 256
    assert config.learning_rate == 0.001  # cpu-demo, the CPU default
    assert config.lora_r == 4  # the config file
    assert config.dataset_path == "from-flag.jsonl"  # --dataset over the file
    assert config.max_steps == 5  # --set last
    bare = cli.resolve_train_config(Namespace(preset=None, config=None, dataset=None, assignments=[]), studio)
    assert bare == TrainConfig(dataset_path=str(SAMPLE)).replace(learning_rate=0.001, num_train_epochs=1,
                                                                  max_length=256, save_steps=20)


def test_format_event():
    status = StatusEvent(RunState.TRAINING, max_steps=4)
    assert cli.format_event(status, "en") == "[Training]"
    assert cli.format_event(status, "zh") == "[训练中]"
    assert cli.format_event(ProgressEvent("progress_load_model"), "en") == \
        "... Loading the model"
    line = cli.format_event(LogEvent(3, max_steps=4, epoch=0.75, loss=1.23456, learning_rate=2e-4, grad_norm=math.nan,
                                     tokens_per_second=812.4), "en")
    assert line == "step 3/4  epoch 0.75  loss 1.2346  lr 2.00e-04  tok/s 812"
    assert cli.format_event(ErrorEvent("train_failed"), "en") is None


def test_the_cli_uses_only_the_public_surface():
    """`from engine import ...` only: no `engine.<submodule>` import, at module level or in a function."""
    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert "engine" in imported
    assert [name for name in imported if name and name.startswith("engine.")] == []


def in_process_studio(monkeypatch, tmp_path, job_factory) -> None:
    """`cli.main` builds `Studio(runs folder)`: give it a fake job and a temporary runs folder."""
    monkeypatch.setattr(engine, "Studio", lambda _runs="runs": Studio(tmp_path / "runs", job_factory=job_factory,
                                                                      data_root=tmp_path / "data"))


def test_train_in_process_prints_the_events(tmp_path, monkeypatch, capsys):
    in_process_studio(monkeypatch, tmp_path, lambda *a: FakeJob(*a, steps=10, delay=0.0))
    assert cli.main(["train", "--dataset", str(SAMPLE), "--run-dir", str(tmp_path / "runs" / "r"), "--lang", "en"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"run r -> {tmp_path / 'runs' / 'r'}"
    assert "[Training]" in out and "[Done]" in out
    assert "step 10/10  epoch 1.00  loss 0.3000" in out
    found = engine.diagnose([{"step": step, "loss": 3.0 / step} for step in range(1, 9)])  # as soon as it can say
    assert found.kind == "healthy" and [line for line in out if line.startswith(">> ")] == [
        f">> {engine.render(found.title_code, found.params)} {engine.render(found.advice_code, found.params)}"]
    assert str(tmp_path / "runs" / "r" / "adapter") in out[-1]


def test_train_in_process_words_the_failure(tmp_path, monkeypatch, capsys):
    def failing_job(*_args):
        raise engine.EngineError("model_offline", {"name": "org/model"}, hint="hint_local_model")

    in_process_studio(monkeypatch, tmp_path, failing_job)
    assert cli.main(["train", "--dataset", str(SAMPLE), "--lang", "en"]) == 1
    captured = capsys.readouterr()
    expected = engine.render_error(engine.EngineError("model_offline", {"name": "org/model"},
                                                      hint="hint_local_model"), "en")
    assert "[Failed]" in captured.out and captured.err.strip() == expected and "org/model" in expected


class FakeChat:
    """Stands in for ChatModel: records each compare call and answers both sides at once."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def compare(self, run_dir, messages, *rest):
        from engine.chat.inference import AnswerPair

        self.calls.append((Path(run_dir), messages, rest))
        return AnswerPair(base="base says 你好", adapter="adapter says hi")


def test_chat_in_process_answers_both_sides_with_one_call(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "elsewhere" / "run-1"
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run_dir / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    chat = FakeChat()
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    studio.chat = chat
    monkeypatch.setattr(engine, "Studio", lambda: studio)
    assert cli.main(["chat", "--run", str(run_dir), "--prompt", "hello", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"base": "base says 你好", "adapter": "adapter says hi"}
    assert chat.calls == [(run_dir, [{"role": "user", "content": "hello"}], ())]
    assert cli.main(["chat", "--run", str(run_dir), "--prompt", "hello", "--lang", "en"]) == 0
    assert capsys.readouterr().out == "== Base model ==\nbase says 你好\n\n== With adapter ==\nadapter says hi\n"
    missing = tmp_path / "no-run"
    assert cli.main(["chat", "--run", str(missing), "--prompt", "hello", "--lang", "en"]) == 1
    assert str(missing) in capsys.readouterr().err and len(chat.calls) == 2


# ---- train: real runs on the bundled model (slow) ---------------------------------------------
def read_events(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return events


def statuses(path: Path) -> list[str]:
    return [e["data"]["state"] for e in read_events(path) if e["kind"] == "status"]


@pytest.mark.slow
def test_train_smoke_test(tmp_path):
    run_dir = tmp_path / "run"
    result = app("train", "--preset", "smoke-test", "--run-dir", str(run_dir), timeout=900)
    assert result.returncode == 0, output(result)[-3000:]
    assert "Traceback" not in output(result)
    assert (run_dir / "config.yaml").is_file()
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    assert config.max_steps == 2 and config.eval_strategy == "no"
    assert statuses(run_dir / "events.jsonl") == ["LOADING", "TRAINING", "SAVING", "DONE"]
    logs = [e["data"] for e in read_events(run_dir / "events.jsonl") if e["kind"] == "log"]
    assert logs and logs[-1]["step"] == 2 and any(isinstance(d.get("loss"), float) for d in logs)
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    adapter_config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter_config["r"] == config.lora_r
    assert str(run_dir / "adapter") in result.stdout


@pytest.mark.slow
def test_train_sigint_stops_and_saves(tmp_path):
    run_dir = tmp_path / "run"
    events = run_dir / "events.jsonl"
    log_file = tmp_path / "stdout.txt"
    with log_file.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen([sys.executable, "app.py", "train", "--preset", "smoke-test",
                                 "--set", "max_steps=200", "--set", "logging_steps=1", "--run-dir", str(run_dir)],
                                cwd=ROOT, env=app_env(), stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while "TRAINING" not in statuses(events):
                assert proc.poll() is None, log_file.read_text(encoding="utf-8")[-3000:]
                assert time.monotonic() < deadline, "no TRAINING status within 300 s"
                time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_file.read_text(encoding="utf-8")
    assert code == 130, text[-3000:]
    assert "Traceback" not in text
    states = statuses(events)
    assert states[-1] == "STOPPED" and "DONE" not in states and "FAILED" not in states
    steps = [e["data"]["step"] for e in read_events(events) if e["kind"] == "log"]
    assert not steps or max(steps) < 200
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
