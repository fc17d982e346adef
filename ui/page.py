"""What every tab is built from: the Blocks, the studio, the page's words and language, the training form, the tabs
and the newcomer's progress marks."""
from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from engine import Studio
from ui.gathered import Gathering
from ui.i18n import Texts


@dataclass
class Form:
    """The run's settings on the page: the dataset path box (Dataset tab) and one input per `TrainConfig`
    field (Hyperparameters tab), created before any tab so every tab can read them."""

    dataset_path: gr.Textbox
    fields: dict[str, gr.components.Component]

    @property
    def names(self) -> list[str]:
        """The TrainConfig field names of the form, in input order."""
        return list(self.fields)

    @property
    def components(self) -> list:
        """The form's input components, in field order."""
        return list(self.fields.values())


@dataclass
class Page:
    """Handed to each tab's `build(page)`. `tabs` switches tabs (`gr.Tabs(selected="tab-chat")` as an output; the
    tab ids are their elem ids, see `ui.journey.TAB_STEPS`); `marks` holds the session's progress marks (a
    `gr.State(bool)` each: "data", "settings", "trained", "studied"), set as outputs to mark a tab's step done.
    `public_url` is the address raters reach this server at (for their invitation links); None means the address
    of the organiser's own request. A tab adds what it rewords on a language switch to `language_switch`, and what it
    refreshes on a change of tab to `tab_switch`: each gathering runs as one request (see `ui.gathered`)."""

    demo: gr.Blocks
    studio: Studio
    texts: Texts
    language: gr.Radio
    form: Form
    tabs: gr.Tabs
    marks: dict[str, gr.State]
    public_url: str | None = None
    language_switch: Gathering = field(default_factory=Gathering)
    tab_switch: Gathering = field(default_factory=Gathering)
