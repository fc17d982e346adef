"""The System panel below the tabs: the system check of `python app.py doctor` (Python, torch, GPU, disks, the hub),
closed until opened, each line ✓ / ⚠ / ✗ with its fix, worded in the page's language, with a *Check again* button."""
from __future__ import annotations

import gradio as gr

from engine import Check, Studio, system_checks
from ui.i18n import t
from ui.page import Page
from ui.wiring import bind

MARKS = {"ok": "✓", "warning": "⚠", "problem": "✗"}


def checks_markdown(checks: list[Check] | None, lang: str) -> str:
    """The panel's text: the introduction, then one line per check with its fix below (none before the first
    check)."""
    lines = [t("system_intro", lang), ""]
    for check in checks or []:
        record = check.to_dict(lang)
        lines.append(f"- {MARKS[record['status']]} **{record['title']}**: {record['message']}")
        if record["fix"]:  # a hard line break (two spaces) puts the fix on its own line of the item
            lines[-1] += "  "
            lines.append(f"  {t('system_fix', lang)} {record['fix']}")
    return "\n".join(lines)


def check_now(studio: Studio, lang: str) -> tuple[list[Check], str]:
    """Check this computer (the runs folder is the studio's); the checks and the panel's text."""
    checks = system_checks(studio.runner.runs_root)
    return checks, checks_markdown(checks, lang)


def first_check(studio: Studio, lang: str, checks: list[Check] | None) -> tuple:
    """On opening the panel: check once per page; later openings keep what was found."""
    if checks:
        return gr.skip(), gr.skip()
    return check_now(studio, lang)


def build(page: Page) -> None:
    """Lay out the panel (closed) and wire opening, *Check again* and the language switch."""
    texts, lang = page.texts, page.language
    with texts.add(gr.Accordion(open=False, elem_id="system"), label="system_title") as panel:
        report = gr.Markdown(checks_markdown(None, texts.lang), elem_id="system-report")
        again = texts.add(gr.Button(size="sm", elem_id="system-recheck"), value="system_recheck")
    checks = gr.State(None)
    panel.expand(bind(first_check, page.studio), [lang, checks], [checks, report],
                 api_name="system_check", show_progress="minimal")
    again.click(bind(check_now, page.studio), [lang], [checks, report], api_name="system_recheck",
                show_progress="minimal")
    page.language_switch.add(checks_markdown, [checks, lang], [report])
