"""The accelerator: what is present, and the one lock that training and generation share."""
from __future__ import annotations

import gc
import os
import threading

DEVICE_LOCK = threading.Lock()


def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def bf16_supported() -> bool:
    """Whether a CUDA GPU is present and supports bfloat16."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def memory_in_use_mb() -> float:
    """GPU memory allocated by torch where CUDA is present, else this process's resident memory."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.memory_allocated() / 2**20
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def release_memory() -> None:
    """Give cached accelerator memory back after a run or a failure."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is a torch or Python out-of-memory error, or any error whose message says "out of memory"."""
    import torch

    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()
