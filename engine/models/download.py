"""Downloading a base model into the studio's downloads folder from a download source, the Hugging Face hub, a
mirror of it (an `HF_ENDPOINT` such as https://hf-mirror.com) or ModelScope, with progress in bytes and resume.

Only safetensors weights and the tokenizer and config files are fetched (never *.bin/*.pt pickles, never remote
code). A download is staged in a hidden `.partial-<source>-<owner--name>` folder beside its final one: the libraries
resume from what is there after an interruption, and only a whole model (`engine.models.catalogue.is_complete`) is
renamed into place, so a half download is never taken for a model. One download of a model runs at a time (a lock
file per model, `engine.system.oslocks`); a second waits and then takes the first's result.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from engine.errors import EngineError
from engine.models.catalogue import download_folder, downloads_root, entry, is_complete
from engine.system import oslocks

DownloadProgress = Callable[[int, int], None]  # (bytes on disk, bytes in all), called from download threads

DOWNLOAD_SOURCES = ("hub", "mirror", "modelscope")
HUB_ENDPOINT = "https://huggingface.co"
DEFAULT_MIRROR = "https://hf-mirror.com"
MODELSCOPE_ENDPOINT = "https://www.modelscope.cn"
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
IGNORE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.py", "original/*"]
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
REPORT_EVERY = 0.25  # seconds between progress reports
SPACE_MARGIN = 2**28  # free disk kept beyond the download (256 MiB)
LOCK_WAIT_S = 0.5  # between tries of a model's download lock another download holds


def no_progress(_done: int, _total: int) -> None:
    """A progress callback that reports nothing."""


def mirror_endpoint(endpoint: str = "") -> str:
    """The mirror to use: `endpoint`, else the `HF_ENDPOINT` environment variable, else hf-mirror.com."""
    return (endpoint or "").strip() or os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_MIRROR


def source_endpoint(source: str, endpoint: str = "") -> str:
    """The web address a download from `source` ("hub", "mirror" or "modelscope") goes to; raises
    `model_source_unknown`, or `model_endpoint_invalid` for a mirror address that is not a web address."""
    if source == "hub":
        return HUB_ENDPOINT
    if source == "modelscope":
        return MODELSCOPE_ENDPOINT
    if source != "mirror":
        raise EngineError("model_source_unknown", {"source": source, "sources": ", ".join(DOWNLOAD_SOURCES)})
    url = mirror_endpoint(endpoint)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise EngineError("model_endpoint_invalid", {"endpoint": url})
    return url.rstrip("/")


def reachable(url: str, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the host of `url` opens within `timeout` seconds."""
    parsed = urlparse(url)
    try:
        port = parsed.port or (80 if parsed.scheme == "http" else 443)
        socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
        return True
    except (OSError, ValueError):
        return False


def download_model(model_id: str, source: str = "hub", endpoint: str = "",
                   progress: DownloadProgress = no_progress) -> Path:
    """The folder of a whole copy of hub id `model_id` in the studio's downloads, fetched from `source` (a mirror
    at `endpoint`) unless it is already there; a download stopped half-way continues when called again. Raises
    worded EngineErrors: offline or unreachable, no such model, gated, no safetensors, no disk space, ModelScope's
    client missing."""
    name = model_id.strip()
    if not HUB_ID.match(name) or any(part in (".", "..") for part in name.split("/")):
        raise EngineError("model_download_id", {"name": name or "-"}, hint="hint_local_model")
    url = source_endpoint(source, endpoint)
    final = download_folder(name)
    if is_complete(final):
        return final
    if source == "modelscope" and importlib.util.find_spec("modelscope") is None:
        raise EngineError("modelscope_missing", hint="hint_install_modelscope")
    _check_online(name, source, url)
    with _download_lock(final):
        if is_complete(final):  # another thread or process fetched it while this one waited
            return final
        staging = downloads_root() / f".partial-{source}-{final.name}"
        staging.mkdir(parents=True, exist_ok=True)
        if source == "modelscope":
            _from_modelscope(name, staging, progress)
        else:
            _from_hub(name, staging, url, progress)
        if not is_complete(staging):
            raise EngineError("model_no_safetensors", {"name": name}, hint="hint_local_model")
        _move_into_place(name, staging, final)
    return final


@contextmanager
def _download_lock(final: Path) -> Iterator[None]:
    """Hold the lock of one model's download (a hidden `.lock-<owner--name>` file in the downloads folder) while
    the block runs, waiting while another thread or process holds it: two downloads of one model would share its
    staging folder."""
    downloads_root().mkdir(parents=True, exist_ok=True)
    fd = oslocks.open_lock_file(downloads_root() / f".lock-{final.name}")
    try:
        while not oslocks.take(fd):
            time.sleep(LOCK_WAIT_S)
        yield
    finally:
        oslocks.close_lock_file(fd)


def _move_into_place(name: str, staging: Path, final: Path) -> None:
    """Rename the whole download `staging` to `final` (replacing a broken copy there); a file held open by another
    program (an antivirus scanner on Windows) or gone is worded, and the download can be tried again."""
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # the hub client's resume notes
    try:
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except OSError as exc:
        detail = f"{type(exc).__name__}: {exc.strerror or exc}"[:200]
        raise EngineError("model_download_failed", {"name": name, "detail": detail},
                          hint="hint_download_again") from None


def _check_online(name: str, source: str, url: str) -> None:
    """Refuse fast, with the local options, when the hub client is told to stay offline or `url` is unreachable."""
    offline = source != "modelscope" and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not reachable(url):
        if source == "hub":
            raise EngineError("model_offline", {"name": name}, hint="hint_local_model")
        raise EngineError("model_source_unreachable", {"name": name, "endpoint": url}, hint="hint_local_model")


class _Meter:
    """Bytes done of a download's total, told to a progress callback at most every REPORT_EVERY seconds (and at
    the end); fed from several download threads."""

    def __init__(self, progress: DownloadProgress, total: int = 0, done: int = 0) -> None:
        self.progress, self.total, self.done = progress, total, done
        self._lock = threading.Lock()
        self._shown = 0.0

    def grow(self, size: int) -> None:
        """Count one more file of `size` bytes in the total."""
        with self._lock:
            self.total += max(0, int(size or 0))

    def add(self, size: int) -> None:
        """Count `size` more bytes done."""
        with self._lock:
            self.done += int(size)
        self._report()

    def reach(self, done: int) -> None:
        """Count the bytes done as `done`, unless more were counted already."""
        with self._lock:
            self.done = max(self.done, int(done))
        self._report()

    def finish(self) -> None:
        """Report the download complete."""
        self.progress(self.total, self.total)

    def _report(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._shown < REPORT_EVERY:
                return
            self._shown = now
            done, total = min(self.done, self.total or self.done), self.total
        self.progress(done, total)


class _Nowhere:
    """A text stream that drops what is written to it (the progress bars draw nothing)."""

    def write(self, text: str) -> int:
        """Drop `text`."""
        return len(text)

    def flush(self) -> None:
        """Nothing to flush."""


def _bar_class(meter: _Meter, already: int) -> type:
    """A silent tqdm class for `snapshot_download(tqdm_class=...)` whose byte bars move `meter`: bytes on disk are
    the files complete before (`already`) plus the largest byte bar's count (the bytes written, resumed bytes
    included; the network-transfer bar counts no more than that)."""
    from tqdm import tqdm

    class SilentBar(tqdm):
        """A tqdm bar that counts but draws nothing, reporting its bytes to the meter."""

        def __init__(self, *args, **kwargs) -> None:
            kwargs.update(file=_Nowhere(), disable=False)
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1):
            """Count `n` more, and move the meter when this bar counts bytes."""
            shown = super().update(n)
            if self.unit == "B":
                meter.reach(already + int(self.n))
            return shown

    return SilentBar


@contextmanager
def _hub_errors(name: str, url: str) -> Iterator[None]:
    """Turn the hub client's failures into worded EngineErrors (a download that stops can be continued)."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        yield
    except GatedRepoError:
        raise EngineError("model_gated", {"name": name, "endpoint": url}, hint="hint_hub_login") from None
    except RepositoryNotFoundError:
        raise EngineError("model_not_on_source", {"name": name, "endpoint": url}, hint="hint_check_model_id") from None
    except Exception as exc:  # network and hub errors come in many types; all mean "try again later"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise EngineError("model_download_failed", {"name": name, "detail": detail},
                          hint="hint_download_again") from None


def _from_hub(name: str, staging: Path, url: str, progress: DownloadProgress) -> None:
    """Fetch `name` from the hub (or a mirror) at `url` into `staging`, resuming what is there: a dry run first
    gives the bytes in all, those already here and the disk space needed."""
    from huggingface_hub import snapshot_download

    options = {"local_dir": staging, "endpoint": url, "allow_patterns": ALLOW_PATTERNS,
               "ignore_patterns": IGNORE_PATTERNS}
    with _hub_errors(name, url):
        planned = snapshot_download(name, dry_run=True, **options)
    total = sum(item.file_size or 0 for item in planned)
    already = sum(item.file_size or 0 for item in planned if not item.will_download)
    _check_space(name, total - already, staging)
    meter = _Meter(progress, total, already)
    with _hub_errors(name, url):
        snapshot_download(name, tqdm_class=_bar_class(meter, already), **options)
    meter.finish()


def _check_space(name: str, needed: int, folder: Path) -> None:
    """Refuse a download that the disk holding `folder` has no room for."""
    free = shutil.disk_usage(folder).free
    if needed + SPACE_MARGIN > free:
        raise EngineError("model_download_no_space", {"name": name, "needed_gb": round(needed / 2**30, 1),
                                                      "free_gb": round(free / 2**30, 1), "folder": str(folder.parent)},
                          hint="hint_download_space")


def _from_modelscope(name: str, staging: Path, progress: DownloadProgress) -> None:
    """Fetch `name` (its ModelScope id when the list names one) from ModelScope into `staging` with its client."""
    from modelscope import snapshot_download

    listed = entry(name) or {}
    meter = _Meter(progress)

    class Callback:
        """ModelScope's per-file progress callback (`modelscope.hub.callback.ProgressCallback`'s methods)."""

        def __init__(self, filename: str, file_size: int) -> None:
            meter.grow(file_size)

        def update(self, size: int) -> None:
            """Count `size` more bytes of this file."""
            meter.add(size)

        def end(self) -> None:
            """This file is complete."""

    try:
        snapshot_download(listed.get("modelscope", name), local_dir=str(staging), allow_patterns=ALLOW_PATTERNS,
                          ignore_patterns=IGNORE_PATTERNS, progress_callbacks=[Callback])
    except Exception as exc:  # the ModelScope client raises many types; all mean "try again later"
        raise EngineError("model_download_failed", {"name": name, "detail": str(exc).strip()[:200] or
                                                    type(exc).__name__}, hint="hint_download_again") from None
    meter.finish()
