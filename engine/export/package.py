"""The adapter package: one zip with the PEFT folder (weights, adapter config, tokenizer and chat template), the
model card, the run's config, the loss curve as a PNG and the metrics, ready to hand over or upload to the Hub."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.export.card import CardFacts, is_hub_id, model_card
from engine.export.source import ExportSource, Progress, no_progress
from engine.export.space import ensure_free_space, staged_file
from engine.locales import message_key, render

# The files of an adapter folder that belong in the package: PEFT's weights and config and the tokenizer with its
# chat template. A checkpoint's optimizer, scheduler and trainer state, PEFT's stock README and the pickled
# training arguments stay out (the package holds safetensors and plain text only).
PACKAGE_FILES = ("adapter_model.safetensors", "adapter_config.json", "tokenizer*.json", "special_tokens_map.json",
                 "added_tokens.json", "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt",
                 "tokenizer.model")
STEP_FILES = message_key("export_package_files")  # progress: copying the adapter's files into the zip
STEP_CHART = message_key("export_package_chart")  # progress: drawing the loss curve, writing the card
PNG_DPI = 120


def package_path(source: ExportSource) -> Path:
    """Where the package of `source` is written: `export/<adapter>/<run id>-adapter.zip`."""
    return source.export_dir / f"{source.run_id}-adapter.zip"


def package_files(adapter_dir: Path) -> list[Path]:
    """The adapter folder's files that go into the package, in a stable order."""
    found = {path for pattern in PACKAGE_FILES for path in adapter_dir.glob(pattern) if path.is_file()}
    return sorted(found)


def portable_adapter_config(source: ExportSource) -> dict[str, Any]:
    """The adapter's config with the base named by its Hub id rather than this machine's cache folder (so PEFT
    finds the base elsewhere); a base given as a local folder is kept as it is."""
    config = source.adapter_config()
    base = source.base_model
    if is_hub_id(base):
        config["base_model_name_or_path"] = base
    return config


def metrics(facts: CardFacts) -> dict[str, Any]:
    """The package's metrics.json: final training loss, eval loss and perplexity, the blind-study summary."""
    final = facts.final_train_loss
    return {"final_train_loss": final[1] if final else None, "final_step": final[0] if final else None,
            "eval_loss": facts.eval_loss, "perplexity": facts.perplexity,
            "study": asdict(facts.study) if facts.study else None}


def loss_png(curve: list[dict[str, Any]]) -> bytes:
    """The loss curve (training loss, and eval loss when recorded) drawn by matplotlib as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6), dpi=PNG_DPI)
    axes = figure.add_subplot()
    for key, style in (("loss", "-"), ("eval_loss", "o--")):
        points = [(point["step"], point[key]) for point in curve if key in point]
        if points:
            axes.plot(*zip(*points), style, label=render(f"report_{key}"))
    axes.set_xlabel(render("report_step"))
    axes.set_ylabel(render("report_loss"))
    axes.grid(alpha=0.3)
    if curve:
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_adapter_package(source: ExportSource, facts: CardFacts, *, progress: Progress = no_progress) -> Path:
    """Write `<run id>-adapter.zip` into the adapter's export folder (free space checked first, written under a
    temporary name and renamed when complete) and return its path. Inside, one folder named like the zip holds
    the PEFT files, README.md (the model card), config.yaml, loss.png and metrics.json."""
    files = package_files(source.adapter_dir)
    target = package_path(source)
    ensure_free_space(target.parent, sum(path.stat().st_size for path in files))
    folder = target.stem
    with staged_file(target) as staging, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, path in enumerate(files):
            progress(STEP_FILES, index / (len(files) + 1))
            if path.name == "adapter_config.json":
                archive.writestr(f"{folder}/{path.name}", json.dumps(portable_adapter_config(source), indent=2))
            else:
                archive.write(path, f"{folder}/{path.name}")
        progress(STEP_CHART, len(files) / (len(files) + 1))
        archive.writestr(f"{folder}/loss.png", loss_png(facts.curve))
        archive.writestr(f"{folder}/README.md", model_card(source, facts))
        archive.writestr(f"{folder}/config.yaml", (source.run_dir / "config.yaml").read_text(encoding="utf-8"))
        archive.writestr(f"{folder}/metrics.json", json.dumps(metrics(facts), indent=2, ensure_ascii=False))
    progress(STEP_CHART, 1.0)
    return target
