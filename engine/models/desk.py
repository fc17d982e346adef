"""The studio's base-model verbs: this machine's tier, the models the picker recommends (on disk first) with the
estimate's verdict for the current settings, and downloads from a download source.

A part of `Studio` (it uses the studio's `check_dataset` to count the current dataset's tokens); front ends call
these as `Studio` methods.
"""
from __future__ import annotations

from pathlib import Path

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.models import catalogue, download


class ModelDesk:
    """The base-model part of `Studio`: it uses the studio's `check_dataset`."""

    def machine_tier(self) -> catalogue.MachineTier:
        """Which part of the recommended list suits this machine (its device and memory)."""
        from engine.planning import estimate

        device = estimate.detect_device()
        return catalogue.machine_tier(device.kind, device.name, device.total_bytes)

    def recommended_models(self, config: TrainConfig, every: bool = False) -> list[catalogue.ModelChoice]:
        """The base models for this machine, those on disk first, each with the memory verdict and time per epoch of
        `config` (the time from the config's dataset, its tokens counted with the config's model; none without it).
        With `every`, the whole list rather than this machine's part."""
        from engine.planning import estimate

        return catalogue.recommended_models(config, estimate.detect_device(), self._tokens_per_epoch(config), every)

    def _tokens_per_epoch(self, config: TrainConfig) -> int | None:
        """The config's dataset's tokens per epoch, or None when it cannot be read or counted."""
        if not config.dataset_path or not Path(config.dataset_path).is_file():
            return None
        try:
            return self.check_dataset(config.dataset_path, config).summary.tokens_per_epoch or None
        except EngineError:
            return None

    def download_model(self, model_id: str, source: str = "hub", endpoint: str = "",
                       progress: download.DownloadProgress = download.no_progress) -> Path:
        """Download hub id `model_id` from `source` ("hub", "mirror" at `endpoint`, or "modelscope") into the studio's
        downloads, reporting (bytes on disk, bytes in all) to `progress`; returns its folder (at once when it is
        already there). A download stopped half-way continues where it stopped."""
        return download.download_model(model_id, source, endpoint, progress)
