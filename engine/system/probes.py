"""What the system check (engine/system/doctor.py) looks at, each fact gathered without raising: torch and the
GPU, the NVIDIA driver, bitsandbytes, free disk, installed versions against requirements.txt, the model hub."""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
HUB_TIMEOUT_SECONDS = 2.0
SMI_TIMEOUT_SECONDS = 10
CUDA_VERSION = re.compile(r"CUDA Version:\s*(\d+\.\d+)")


@dataclass(frozen=True)
class TorchFacts:
    """The installed torch: its version, the CUDA version its build targets (None for a CPU build), whether it can
    use a CUDA GPU now, and why it cannot be imported (`error`, with the other fields empty)."""

    version: str = ""
    cuda: str | None = None
    usable: bool = False
    error: str | None = None


@dataclass(frozen=True)
class GpuFacts:
    """The first CUDA GPU as torch sees it: name, total and free memory in bytes."""

    name: str
    total: int
    free: int


@dataclass(frozen=True)
class DriverFacts:
    """What `nvidia-smi` says: the GPUs it lists, the driver version and the newest CUDA version the driver
    supports (all empty when there is no nvidia-smi)."""

    gpus: tuple[str, ...] = ()
    driver: str | None = None
    cuda: str | None = None


@dataclass(frozen=True)
class BitsAndBytesFacts:
    """bitsandbytes: its version (None when it cannot be imported, `error` says why) and, on a GPU, whether a tiny
    4-bit matrix product works (`matmul`: None when not tried, else "" for working or the failure; `gpu_busy`: not
    tried because a run or a generation held the GPU)."""

    version: str | None
    error: str | None = None
    matmul: str | None = None
    gpu_busy: bool = False


def torch_facts() -> TorchFacts:
    """The installed torch, or why it cannot be imported."""
    try:
        import torch
    except Exception as exc:  # a broken install raises more than ImportError (missing DLLs on Windows: OSError)
        return TorchFacts(error=_short(exc))
    return TorchFacts(torch.__version__, torch.version.cuda, torch.cuda.is_available())


def gpu_facts() -> GpuFacts | None:
    """The first CUDA GPU's name and memory, None without one (or when torch cannot be imported)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info(0)
        return GpuFacts(torch.cuda.get_device_name(0), total, free)
    except Exception:  # no GPU for torch, whatever the reason: the driver check says more
        return None


def driver_facts(which=shutil.which, run=subprocess.run) -> DriverFacts:
    """The GPUs, driver and CUDA version `nvidia-smi` reports; empty when it is missing or fails."""
    program = which("nvidia-smi")
    if program is None:
        return DriverFacts()
    try:
        listing = run([program, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                      text=True, timeout=SMI_TIMEOUT_SECONDS, check=True).stdout
        summary = run([program], capture_output=True, text=True, timeout=SMI_TIMEOUT_SECONDS, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return DriverFacts()
    return parse_nvidia_smi(listing, summary)


def parse_nvidia_smi(listing: str, summary: str) -> DriverFacts:
    """Facts from `nvidia-smi --query-gpu=name,driver_version --format=csv,noheader` (`listing`) and plain
    `nvidia-smi` (`summary`, whose header names the CUDA version)."""
    rows = [[part.strip() for part in line.split(",")] for line in listing.splitlines() if line.strip()]
    found = CUDA_VERSION.search(summary)
    return DriverFacts(tuple(row[0] for row in rows), rows[0][-1] if rows and len(rows[0]) > 1 else None,
                       found.group(1) if found else None)


def bitsandbytes_facts(on_gpu: bool, gpu_busy: bool = False) -> BitsAndBytesFacts:
    """bitsandbytes' version and, when `on_gpu`, whether a 4-bit layer's product matches its de-quantized weight;
    not tried when `gpu_busy` (the studio's device lock is held: a run beside it may be at the memory's edge)."""
    try:
        # a broken install prints its own diagnosis at import, which would break `doctor --json`'s output
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import bitsandbytes
    except Exception as exc:  # its import fails in many ways (missing libraries, unsupported platforms)
        return BitsAndBytesFacts(None, _short(exc))
    version = getattr(bitsandbytes, "__version__", "?")
    if not on_gpu:
        return BitsAndBytesFacts(version)
    if gpu_busy:
        return BitsAndBytesFacts(version, gpu_busy=True)
    try:
        return BitsAndBytesFacts(version, matmul=_four_bit_product(bitsandbytes))
    except Exception as exc:  # the kernels fail on unsupported GPUs and mismatched CUDA runtimes
        return BitsAndBytesFacts(version, matmul=_short(exc))


def _four_bit_product(bitsandbytes) -> str:
    """"" when a 64x64 NF4 layer on the GPU gives the product of its de-quantized weight, else what differs."""
    import torch

    layer = bitsandbytes.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float16, quant_type="nf4").cuda()
    inputs = torch.randn(4, 64, dtype=torch.float16, device="cuda")
    weight = bitsandbytes.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
    with torch.no_grad():
        got, expected = layer(inputs), inputs @ weight.to(torch.float16).t()
    if torch.allclose(got.float(), expected.float(), rtol=2e-2, atol=2e-2):
        return ""
    return f"largest difference {(got.float() - expected.float()).abs().max().item():.3g}"


def free_bytes(path: str | Path) -> tuple[Path, int]:
    """The folder itself, else its nearest existing parent, and the free bytes on its disk."""
    folder = Path(path).expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder, shutil.disk_usage(folder).free


def model_cache() -> Path:
    """Where the hub client keeps the models it downloads (HF_HUB_CACHE / HF_HOME, as huggingface_hub resolves it)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def model_folders() -> list[Path]:
    """Where base models are written: the studio's cache (its downloads and GGUF conversions,
    `engine.models.loader.cache_root`), then the hub client's cache."""
    from engine.models.loader import cache_root

    return [cache_root(), model_cache()]


def tightest_disk(paths: list[Path]) -> tuple[Path, int]:
    """`free_bytes` of the path whose disk has the least room (the first of those on one disk)."""
    return min((free_bytes(path) for path in paths), key=lambda found: found[1])


def gpu_busy(runs_dir: str | Path) -> bool:
    """Whether the studio's device lock of the runs folder `runs_dir` is held (a run, a chat, a study's answers);
    a lock file that cannot be read counts as held."""
    from engine.system.device import DeviceLock
    from engine.training.runner import LOCK_FILE

    try:
        return DeviceLock(Path(runs_dir) / LOCK_FILE).locked()
    except OSError:
        return True


def pinned_versions(requirements: Path) -> list[tuple[str, str, str | None]]:
    """(name, pinned specifier, installed version or None) for each requirement of a requirements file whose
    markers apply here."""
    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate():
            found.append((requirement.name, str(requirement.specifier), installed_version(requirement.name)))
    return found


def installed_version(name: str) -> str | None:
    """The installed distribution's version, None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def hub_endpoint() -> str:
    """The hub address models are downloaded from: the mirror named by HF_ENDPOINT, else the Hugging Face hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE forbids downloads."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_answers(endpoint: str, timeout: float = HUB_TIMEOUT_SECONDS) -> bool:
    """Whether `endpoint` answers a HEAD request within about `timeout` seconds (any HTTP status counts: the
    server is there). The request runs on a daemon thread, so a slow name lookup cannot hold the caller longer."""
    answered: list[bool] = []

    def ask() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)
        except (OSError, ValueError):
            answered.append(False)

    asking = threading.Thread(target=ask, name="hub-head", daemon=True)
    asking.start()
    asking.join(timeout + 0.5)
    return bool(answered and answered[0])


def _short(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
