"""The fine-tuning engine's public surface: a plain Python library (no gradio) that the UI, the CLI and
scripts drive through `Studio` and the types below.

Front ends import only from here (`from engine import Studio, TrainConfig`), never from a submodule; a
test holds `ui/` to that. Names resolve lazily, so `import engine` stays fast, and heavy libraries
(torch, transformers, trl, peft) are imported only inside the functions that need them.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_SURFACE = {
    # the door
    "Studio": "engine.studio", "DatasetCheck": "engine.studio", "RunPlan": "engine.studio",
    # one run's settings
    "TrainConfig": "engine.config", "FIELDS": "engine.config", "GROUPS": "engine.config",
    "field_kind": "engine.config", "parse_assignments": "engine.config", "BUNDLED_MODEL_ID": "engine.config",
    # errors and words
    "EngineError": "engine.errors", "Issue": "engine.errors",
    "LANGS": "engine.locales", "render": "engine.locales", "render_error": "engine.locales",
    "catalogue_text": "engine.locales",
    "plan_lines": "engine.planning.plan_text", "duration": "engine.planning.plan_text",
    "cuda_device_count": "engine.planning.estimate",
    # data, and the folders a web request may name
    "Workspace": "engine.system.workspace", "SAMPLE_DATASET": "engine.presets",
    "DatasetReport": "engine.data.reading", "ColumnMapping": "engine.data.mapping",
    "FORMATS": "engine.data.mapping", "FORMAT_FIELDS": "engine.data.mapping",
    # runs and their events
    "RunState": "engine.training.events", "RunSnapshot": "engine.training.events", "Event": "engine.training.events",
    "StatusEvent": "engine.training.events", "LogEvent": "engine.training.events",
    "ProgressEvent": "engine.training.events", "ErrorEvent": "engine.training.events",
    "diagnose": "engine.training.diagnosis", "smooth": "engine.training.diagnosis",
    # chat and studies
    "GenParams": "engine.chat.inference", "OUTCOMES": "engine.study.stats", "StudyStore": "engine.study.store",
    "BASE_CHOICE": "engine.training.adapters",
    "STUDY_STATES": "engine.study.database", "RatingItem": "engine.study.rating",
    "MAX_COMMENT": "engine.study.rating",
    "read_limited": "engine.serving.limits", "replaying": "engine.serving.limits",
    "add_export_commands": "engine.export.command", "run_export": "engine.export.command",
    "run_report": "engine.export.command", "terminal_progress": "engine.export.command",
    "Invitation": "engine.study.invitations", "RaterPass": "engine.study.invitations",
    "RaterProgress": "engine.study.invitations",
    # base models: the picker's list and downloads
    "ModelChoice": "engine.models.catalogue", "MachineTier": "engine.models.catalogue",
    "DOWNLOAD_SOURCES": "engine.models.download", "mirror_endpoint": "engine.models.download",
    # serving an adapter (the command line's `serve`)
    "add_serve_arguments": "engine.serving.command", "run_serve": "engine.serving.command",
    # the system check (`python app.py doctor`, the System panel)
    "system_check": "engine.system.doctor", "system_checks": "engine.system.doctor", "Check": "engine.system.doctor",
    "run_doctor": "engine.system.doctor",
}

__all__ = sorted(_SURFACE)


def __getattr__(name: str) -> Any:
    """Import the public `name` from its module on first use."""
    module = _SURFACE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
