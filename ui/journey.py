"""The newcomer's path through the tabs: one next-step button at the end of each tab, and progress marks.

Each tab's label shows a mark once its step is done in this browser session: the data checked ✓, the settings
checked ✓ (session state, set by the checks), trained ✓ (a finished or stopped run with an adapter exists) and
studied ✓ (a blind study has votes), both read from the studio. The labels are worded from the catalogue like every
other text, and the language switch rewords them with their marks (they are not in `Texts`, whose words know no
marks). Other tabs mark their step by setting `page.marks[...]` (a `gr.State(bool)`) as an output.
"""
from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from engine import EngineError, RunState, Studio
from ui.i18n import t

# (tab id = its elem id, label key, the mark it can carry or None), in the order the tabs are shown
TAB_STEPS = (("tab-dataset", "tab_dataset", "data"), ("tab-params", "tab_params", "settings"),
             ("tab-training", "tab_training", "trained"), ("tab-chat", "tab_chat", None),
             ("tab-study", "tab_study", "studied"), ("tab-export", "tab_export", None))
MARKS = tuple(mark for _tab, _key, mark in TAB_STEPS if mark)
DONE_MARK = " ✓"


def tab_label(key: str, lang: str, done: bool) -> str:
    """A tab's label in `lang`, with the done mark when its step is done."""
    return t(key, lang) + (DONE_MARK if done else "")


def tab_labels(lang: str, *marks: bool) -> list:
    """Inputs: language, one flag per mark of `MARKS`. Outputs: every tab, labelled in `lang` with its mark."""
    done = dict(zip(MARKS, marks))
    return [gr.Tab(label=tab_label(key, lang, bool(done.get(mark)))) for _tab, key, mark in TAB_STEPS]


def has_trained_run(studio: Studio) -> bool:
    """Whether a run finished, or was stopped, with an adapter to try in Chat (the Training tab's mark)."""
    return any(run.state in (RunState.DONE, RunState.STOPPED) and run.has_adapter for run in studio.list_runs())


def has_study_results(studio: Studio) -> bool:
    """Whether a blind study has votes (the Blind study tab's mark); False when studies cannot be read."""
    try:
        return any(study.get("votes") for study in studio.list_studies())
    except EngineError:
        return False


def studio_marks(studio: Studio) -> tuple[bool, bool]:
    """Inputs: none. Outputs: the trained and studied marks, as the studio knows them (on page load)."""
    return has_trained_run(studio), has_study_results(studio)


def go_to(tab_id: str) -> Callable[[], Any]:
    """A handler with no inputs whose output selects the tab `tab_id` (the page's `gr.Tabs`)."""
    def select() -> gr.Tabs:
        """Output: the tabs, with `tab_id` selected."""
        return gr.Tabs(selected=tab_id)
    return select


def next_button(page, tab_id: str, key: str, elem_id: str, variant: str = "primary") -> gr.Button:
    """A button worded `key` that switches to the tab `tab_id` (the next step, or back to a step to change it)."""
    button = page.texts.add(gr.Button(variant=variant, elem_id=elem_id, size="lg"), value=key)
    button.click(go_to(tab_id), None, page.tabs, api_visibility="private", queue=False, show_progress="hidden")
    return button


def wire_marks(page, tabs: list) -> None:
    """Relabel the tabs (`tabs`, in `TAB_STEPS` order) when a mark or the language changes, and read the studio's
    marks when the page opens and on every change of tab (votes arrive from raters, runs end in other windows)."""
    marks = [page.marks[mark] for mark in MARKS]
    gr.on([page.language.input] + [mark.change for mark in marks], tab_labels, [page.language] + marks, tabs,
          api_visibility="private", queue=False, show_progress="hidden")
    reading, read = (lambda: studio_marks(page.studio)), [page.marks["trained"], page.marks["studied"]]
    page.demo.load(reading, None, read, api_visibility="private", queue=False, show_progress="hidden")
    page.tab_switch.add(reading, [], read)
