"""The system check (`python app.py doctor`, the System panel): each check from injected facts, both languages, the
JSON document and exit codes, the probes' parsing and time limits, and one real run of the command."""
from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from argparse import Namespace
from pathlib import Path

import pytest

from engine import cli
from engine.locales import wordings
from engine.system import doctor, probes
from engine.system.doctor import GIB, OK, PROBLEM, WARNING, Check

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["python", "torch", "gpu", "cuda", "bitsandbytes", "disk_models", "disk_runs", "libraries", "bundled_model",
         "hub"]
CPU_TORCH = probes.TorchFacts("2.13.0+cpu", None, False)
CUDA_TORCH = probes.TorchFacts("2.13.0+cu128", "12.8", True)
NO_DRIVER = probes.DriverFacts()
DRIVER = probes.DriverFacts(("NVIDIA GeForce RTX 4090",), "570.86", "12.8")
GPU = probes.GpuFacts("NVIDIA GeForce RTX 4090", 24 * GIB, 23 * GIB)
SMI_LISTING = "NVIDIA GeForce RTX 4090, 570.86.15\nNVIDIA GeForce RTX 3090, 570.86.15\n"
SMI_SUMMARY = """+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.86.15              Driver Version: 570.86.15      CUDA Version: 12.8     |
|-----------------------------------------+------------------------+----------------------+
"""


def every_branch() -> list[Check]:
    """One check from each branch of every check function."""
    return [
        doctor.check_python((3, 11, 7)), doctor.check_python((3, 9, 18)),
        doctor.check_torch(probes.TorchFacts(error="ImportError: no torch"), NO_DRIVER),
        doctor.check_torch(CUDA_TORCH, DRIVER), doctor.check_torch(CPU_TORCH, DRIVER),
        doctor.check_torch(CPU_TORCH, NO_DRIVER),
        doctor.check_gpu(CUDA_TORCH, GPU, DRIVER),
        doctor.check_gpu(CUDA_TORCH, probes.GpuFacts("RTX 4090", 24 * GIB, 3 * GIB), DRIVER),
        doctor.check_gpu(CPU_TORCH, None, DRIVER), doctor.check_gpu(CUDA_TORCH, None, DRIVER),
        doctor.check_gpu(CPU_TORCH, None, NO_DRIVER),
        doctor.check_cuda(CPU_TORCH, NO_DRIVER), doctor.check_cuda(CUDA_TORCH, DRIVER),
        doctor.check_cuda(probes.TorchFacts("2.13.0+cu130", "13.0", False), DRIVER),
        doctor.check_bitsandbytes(probes.BitsAndBytesFacts(None, "OSError: libcudart"), on_gpu=True),
        doctor.check_bitsandbytes(probes.BitsAndBytesFacts(None, "OSError: libcudart"), on_gpu=False),
        doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2"), on_gpu=False),
        doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2", matmul=""), on_gpu=True),
        doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2", matmul="RuntimeError: no kernel"), on_gpu=True),
        doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2", gpu_busy=True), on_gpu=True),
        *[doctor.check_disk(name, Path("/data"), free) for name in ("disk_models", "disk_runs")
          for free in (GIB // 2, 3 * GIB, 100 * GIB)],
        doctor.check_libraries(None), doctor.check_libraries([("gradio", "==6.31.0", "6.31.0")]),
        doctor.check_libraries([("gradio", "==6.31.0", None)]),
        doctor.check_libraries([("transformers", "==5.23.0", "5.22.1")]),
        doctor.check_bundled_model(None), doctor.check_bundled_model(Path("/x/SmolLM2-135M-Instruct.Q4_1.gguf")),
        doctor.check_hub("https://huggingface.co", True, None), doctor.check_hub("https://hf-mirror.com", False, False),
        doctor.check_hub("https://huggingface.co", False, True),
    ]


# ---- each check from its facts ---------------------------------------------------------------
def test_python_before_3_10_is_a_problem():
    assert doctor.check_python((3, 11, 7)).status == OK
    old = doctor.check_python((3, 9, 18))
    assert (old.status, old.value, old.fix) == (PROBLEM, "3.9.18", "hint_doctor_python")
    assert "3.10" in old.to_dict()["message"]


def test_torch_missing_is_a_problem_and_a_cpu_build_beside_a_gpu_a_warning():
    missing = doctor.check_torch(probes.TorchFacts(error="ImportError: no module named torch"), NO_DRIVER)
    assert missing.status == PROBLEM and "no module named torch" in missing.to_dict()["message"]
    assert doctor.check_torch(CUDA_TORCH, DRIVER).status == OK
    assert "CUDA 12.8" in doctor.check_torch(CUDA_TORCH, DRIVER).to_dict()["message"]
    assert doctor.check_torch(CPU_TORCH, NO_DRIVER).status == OK
    beside = doctor.check_torch(CPU_TORCH, DRIVER)
    assert (beside.status, beside.fix) == (WARNING, "hint_doctor_cuda_torch")
    assert "studio.py setup --force" in beside.to_dict()["fix"]


def test_gpu_free_busy_unused_and_absent():
    found = doctor.check_gpu(CUDA_TORCH, GPU, DRIVER)
    assert found.status == OK and found.value == "NVIDIA GeForce RTX 4090, 23.0/24.0 GiB free"
    busy = doctor.check_gpu(CUDA_TORCH, probes.GpuFacts("RTX 4090", 24 * GIB, 3 * GIB), DRIVER)
    assert busy.status == WARNING and "3.0 GiB of 24.0 GiB" in busy.to_dict()["message"]
    unused_cpu_build = doctor.check_gpu(CPU_TORCH, None, DRIVER)
    assert (unused_cpu_build.status, unused_cpu_build.fix) == (PROBLEM, "hint_doctor_cuda_torch")
    unused_old_driver = doctor.check_gpu(probes.TorchFacts("2.13.0+cu128", "12.8", False), None, DRIVER)
    assert (unused_old_driver.status, unused_old_driver.fix) == (PROBLEM, "hint_doctor_driver")
    assert "CUDA 12.8" in unused_old_driver.to_dict()["fix"]
    absent = doctor.check_gpu(CPU_TORCH, None, NO_DRIVER)
    assert absent.status == WARNING, "no GPU is a warning (CPU training works, slowly), not a problem"
    assert "CPU" in absent.to_dict()["message"] and "cpu-demo" in absent.to_dict()["fix"]


def test_cuda_build_newer_than_the_driver_is_a_problem():
    assert doctor.check_cuda(CPU_TORCH, NO_DRIVER).status == OK
    assert doctor.check_cuda(CUDA_TORCH, DRIVER).status == OK
    too_new = doctor.check_cuda(probes.TorchFacts("2.13.0+cu130", "13.0", False), DRIVER)
    assert too_new.status == PROBLEM and too_new.fix == "hint_doctor_driver_or_build"
    assert "13.0" in too_new.to_dict()["message"] and "12.8" in too_new.to_dict()["fix"]
    assert doctor.check_cuda(probes.TorchFacts("2.13.0+cu126", "12.6", True), DRIVER).status == OK


def test_bitsandbytes_matters_on_a_gpu_only():
    missing = probes.BitsAndBytesFacts(None, "OSError: libcudart.so")
    assert doctor.check_bitsandbytes(missing, on_gpu=False).status == WARNING
    assert doctor.check_bitsandbytes(missing, on_gpu=True).status == PROBLEM
    assert doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2"), on_gpu=False).status == OK
    assert doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2", matmul=""), on_gpu=True).status == OK
    broken = doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2", matmul="RuntimeError: x"), on_gpu=True)
    assert broken.status == PROBLEM and "RuntimeError: x" in broken.to_dict()["message"]
    busy = doctor.check_bitsandbytes(probes.BitsAndBytesFacts("0.50.2", gpu_busy=True), on_gpu=True)
    assert busy.status == OK and busy.message == "doctor_bnb_gpu_busy" and "0.50.2" in busy.to_dict("zh")["message"]


def test_the_4bit_product_is_not_tried_while_the_studio_holds_the_gpu(tmp_path, monkeypatch):
    from engine.system.device import DeviceLock
    from engine.training.runner import LOCK_FILE

    monkeypatch.setattr(probes, "_four_bit_product", lambda _bnb: pytest.fail("tried beside a run"))
    assert not probes.gpu_busy(tmp_path / "runs")  # no runs folder yet: nobody holds the lock
    lock = DeviceLock(tmp_path / "runs" / LOCK_FILE)
    assert lock.acquire("20260101-120000")
    try:
        assert probes.gpu_busy(tmp_path / "runs")
        facts = probes.bitsandbytes_facts(on_gpu=True, gpu_busy=probes.gpu_busy(tmp_path / "runs"))
        assert facts.gpu_busy and facts.matmul is None and facts.version
    finally:
        lock.release()
    assert not probes.gpu_busy(tmp_path / "runs")


def test_the_model_disk_is_the_studios_cache_and_the_hub_cache_whichever_is_fuller(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "studio"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(probes, "model_cache", lambda: tmp_path / "hub")
    assert probes.model_folders() == [tmp_path / "studio", tmp_path / "hub"]
    room = {tmp_path / "studio": 50 * GIB, tmp_path / "hub": 3 * GIB}
    monkeypatch.setattr(probes, "free_bytes", lambda path: (path, room[path]))
    assert probes.tightest_disk(probes.model_folders()) == (tmp_path / "hub", 3 * GIB)
    room[tmp_path / "hub"] = 50 * GIB  # one disk: the studio's own folder is named
    assert probes.tightest_disk(probes.model_folders()) == (tmp_path / "studio", 50 * GIB)


@pytest.mark.parametrize("name, low", [("disk_models", 20), ("disk_runs", 5)])
def test_disk_thresholds(name, low):
    assert doctor.check_disk(name, Path("/data"), GIB // 2).status == PROBLEM
    assert doctor.check_disk(name, Path("/data"), int((low - 0.5) * GIB)).status == WARNING
    plenty = doctor.check_disk(name, Path("/data"), (low + 1) * GIB)
    assert plenty.status == OK and plenty.value == f"{low + 1:.1f} GiB free"
    assert "/data" in plenty.to_dict()["message"]


def test_libraries_against_their_pins():
    assert doctor.check_libraries(None).status == WARNING
    assert doctor.check_libraries([("torch", "==2.13.0", "2.13.0+cpu")]).status == OK, "a local build label matches"
    missing = doctor.check_libraries([("torch", "==2.13.0", "2.13.0"), ("gradio", "==6.31.0", None)])
    assert missing.status == PROBLEM and missing.value == "1/2" and "gradio" in missing.to_dict()["message"]
    other = doctor.check_libraries([("transformers", "==5.23.0", "5.22.1")])
    assert other.status == WARNING
    assert "transformers 5.22.1 (==5.23.0)" in other.to_dict()["message"], "names both versions"


def test_bundled_model_and_hub():
    assert doctor.check_bundled_model(None).status == PROBLEM
    assert doctor.check_bundled_model(Path("/x/m.gguf")).status == OK
    offline = doctor.check_hub("https://huggingface.co", True, None)
    assert offline.status == WARNING and "bundled model" in offline.to_dict()["fix"]
    unreachable = doctor.check_hub("https://hf-mirror.com", False, False)
    assert unreachable.status == WARNING and "https://hf-mirror.com" in unreachable.to_dict()["message"]
    assert "2 s" in unreachable.to_dict()["message"] and "local model" in unreachable.to_dict()["fix"]
    assert doctor.check_hub("https://huggingface.co", False, True).status == OK


# ---- both languages ----------------------------------------------------------------------------
def test_every_branch_is_worded_in_english_and_chinese():
    for check in every_branch():
        en, zh = check.to_dict("en"), check.to_dict("zh")
        for key in ("title", "message", "fix"):
            assert "{" not in en[key] and "{" not in zh[key], (check.name, key)
            assert (en[key] != zh[key]) or not en[key], (check.name, key, en[key])
        assert re.search(r"[\u4e00-\u9fff]", zh["message"] + zh["title"]), zh
        assert en["message"] != check.message, f"{check.message} has no wording"
        assert bool(en["fix"]) == (check.status != OK), check
        wordings(check.message, "en", "zh")  # its own text in both files, no fallback
        if check.fix:
            wordings(check.fix, "en", "zh")


def test_every_check_name_has_a_title_in_both_languages():
    for name in NAMES:
        en, zh = wordings(f"doctor_title_{name}", "en", "zh")
        assert en and zh and en != zh


# ---- the command: JSON, text, exit codes --------------------------------------------------------
def _run(monkeypatch, capsys, checks: list[Check], **options) -> tuple[int, str]:
    monkeypatch.setattr(doctor, "system_checks", lambda runs_dir: checks)
    args = Namespace(**{"json": False, "lang": "en", "runs_dir": "runs", **options})
    return doctor.run_doctor(args), capsys.readouterr().out


def test_json_document_and_exit_codes(monkeypatch, capsys):
    warnings_only = [doctor.check_python((3, 11, 7)), doctor.check_gpu(CPU_TORCH, None, NO_DRIVER)]
    code, out = _run(monkeypatch, capsys, warnings_only, json=True, lang="zh")
    document = json.loads(out)
    assert code == 0 and set(document) == {"checks", "problems", "warnings"}
    assert (document["problems"], document["warnings"]) == (0, 1)
    assert set(document["checks"][0]) >= {"name", "status", "value", "message", "fix"}
    assert document["checks"][1]["name"] == "gpu" and "显卡" in document["checks"][1]["message"]
    code, out = _run(monkeypatch, capsys, [*warnings_only, doctor.check_bundled_model(None)], json=True)
    assert code == 1 and json.loads(out)["problems"] == 1


def test_text_report_marks_each_line_and_ends_with_the_counts(monkeypatch, capsys):
    checks = [doctor.check_python((3, 11, 7)), doctor.check_gpu(CPU_TORCH, None, NO_DRIVER),
              doctor.check_bundled_model(None)]
    code, out = _run(monkeypatch, capsys, checks, lang="zh")
    lines = out.splitlines()
    assert code == 1 and lines[-1] == "1 个问题，1 个警告。"
    assert lines[0].startswith("✓ ") and "-> " in out
    records = [check.to_dict("en") for check in checks]
    plain = doctor.report_lines(records, "cp1252")
    assert [line.split()[0] for line in plain if not line.startswith(" ")] == ["[ok]", "[!]", "[x]"]
    assert doctor.report_lines(records, "utf-8")[0].startswith("✓ ")


def test_the_cli_knows_the_doctor_command():
    assert "doctor" in cli.COMMANDS
    args = cli.build_parser().parse_args(["doctor", "--json", "--lang", "zh", "--runs-dir", "elsewhere"])
    assert (args.json, args.lang, args.runs_dir) == (True, "zh", "elsewhere")


# ---- the probes ---------------------------------------------------------------------------------
def test_nvidia_smi_output_is_parsed():
    facts = probes.parse_nvidia_smi(SMI_LISTING, SMI_SUMMARY)
    assert facts == probes.DriverFacts(("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090"), "570.86.15", "12.8")
    assert probes.parse_nvidia_smi("", "") == NO_DRIVER


def test_driver_facts_without_or_with_a_failing_nvidia_smi():
    assert probes.driver_facts(which=lambda name: None) == NO_DRIVER

    def failing(*_args, **_kwargs):
        raise subprocess.CalledProcessError(9, "nvidia-smi")

    assert probes.driver_facts(which=lambda name: "/usr/bin/nvidia-smi", run=failing) == NO_DRIVER

    def answering(command, **_kwargs):
        return subprocess.CompletedProcess(command, 0, SMI_LISTING if len(command) > 1 else SMI_SUMMARY, "")

    assert probes.driver_facts(which=lambda name: "/usr/bin/nvidia-smi", run=answering).cuda == "12.8"


def test_pinned_versions_read_requirements(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\n-r other.txt\npytest==9.2.0  # tests\nno-such-package-here==1.0\n"
                            'never-here==2.0; python_version < "3"\n', encoding="utf-8")
    found = probes.pinned_versions(requirements)
    assert [name for name, _pin, _installed in found] == ["pytest", "no-such-package-here"]
    assert found[1] == ("no-such-package-here", "==1.0", None) and found[0][2]


def test_free_bytes_of_a_folder_not_made_yet(tmp_path):
    folder, free = probes.free_bytes(tmp_path / "runs" / "later")
    assert folder == tmp_path and free > 0


class _Answering(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802 (the stdlib's name)
        self.send_response(404 if self.path == "/missing" else 200)
        self.end_headers()

    def log_message(self, *_args):
        pass


def test_hub_answers_any_http_status_and_not_a_closed_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert probes.hub_answers(base, timeout=2) and probes.hub_answers(base + "/missing", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not probes.hub_answers(f"http://127.0.0.1:{port}", timeout=1)


def test_a_silent_hub_never_holds_the_check_past_its_timeout():
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        assert not probes.hub_answers(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        assert time.monotonic() - started < 2


def test_hub_endpoint_and_offline_follow_the_environment(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert probes.hub_endpoint() == "https://huggingface.co" and probes.hub_offline()
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.com/")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert probes.hub_endpoint() == "https://hf-mirror.com" and not probes.hub_offline()


# ---- the real command ---------------------------------------------------------------------------
def test_the_real_command_lists_every_check_as_json(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "app.py", "doctor", "--json", "--runs-dir", str(tmp_path / "runs")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    document = json.loads(done.stdout)
    assert [check["name"] for check in document["checks"]] == NAMES
    assert done.returncode == (1 if document["problems"] else 0), done.stderr
    statuses = {check["name"]: check["status"] for check in document["checks"]}
    assert statuses["hub"] == WARNING, "offline is a warning naming the local options"
    assert statuses["python"] == statuses["bundled_model"] == OK and statuses["libraries"] != PROBLEM
    assert document["warnings"] == sum(status == WARNING for status in statuses.values())
