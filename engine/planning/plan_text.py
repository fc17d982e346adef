"""Wording of a RunPlan (problems, advice, data, memory, time) as lines, for the terminal and the UI."""
from __future__ import annotations

from engine.locales import render

GB = 2 ** 30


def duration(seconds: float | None) -> str:
    """h:mm:ss, or "-" when unknown."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def global_batch(config) -> dict[str, int]:
    """The rows of one optimizer update of a run: per device x processes (GPUs) x accumulation, and their product."""
    parts = {"per_device": config.per_device_train_batch_size, "processes": config.num_gpus,
             "accumulation": config.gradient_accumulation_steps}
    return {**parts, "total": parts["per_device"] * parts["processes"] * parts["accumulation"]}


def plan_lines(plan, lang: str) -> list[str]:
    """One line per finding; detail lines start with two spaces."""
    lines = [f"❌ {i.to_dict(lang)['message']}" for i in plan.errors]
    seen: set[str] = set()
    for issue in plan.issues:
        text = issue.to_dict(lang)["message"]
        if issue.severity == "warning" and text not in seen:
            seen.add(text)
            lines.append(f"⚠️ {text}")
    if not lines:
        lines.append(f"✅ {render('plan_no_problems', lang=lang)}")
    if plan.dataset is not None and plan.dataset.summary.tokens_per_epoch:
        summary = plan.dataset.summary
        lines.append(render("plan_data", {"rows": summary.rows, "tokens": summary.tokens_per_epoch}, lang))
    if plan.trainable:
        trainable, total = plan.trainable
        lines.append(render("plan_trainable", {"trainable": f"{trainable:,}", "total": f"{total:,}",
                                               "pct": 100 * trainable / max(total, 1)}, lang))
    memory = plan.memory
    if memory is not None:
        lines.append("**" + render(f"estimate_{memory.verdict}", {
            "total_gb": f"{memory.total / GB:.1f}", "available_gb": f"{memory.available / GB:.1f}",
            "biggest": render(f"estimate_part_{memory.biggest}", lang=lang)}, lang) + "**")
        lines.append("  " + " · ".join(f"{render('estimate_part_' + name, lang=lang)} {size / GB:.2f} GB"
                                      for name, size in memory.parts.items()))
        if memory.suggestion and memory.verdict != "fits":
            code, params = memory.suggestion
            lines.append("  💡 " + render(code, params, lang))
    config = getattr(plan, "config", None)
    if config is not None and config.num_gpus > 1:
        lines.append(render("plan_global_batch", global_batch(config), lang))
    if plan.time is not None:
        lines.append(render("plan_time", {"epoch": duration(plan.time.seconds_per_epoch),
                                          "speed": f"{plan.time.tokens_per_second:,.0f}",
                                          "start": duration(getattr(plan, "start_seconds", 0.0))}, lang))
    return lines
