"""Words the web app in the chosen language from the engine's catalogue, and relabels the page on a switch.

Strings are rendered on the server so that the language chosen in the app (or with `--lang`) also
applies to messages built at run time (status lines, engine errors worded from their codes). The words
themselves live in `engine/locales/<lang>.yaml`: `ui.<key>` for the app, `field.<name>.*` for the settings.
"""
from __future__ import annotations

import json
from typing import Any

import gradio as gr

from engine import LANGS, catalogue_text, render

# the language switch: every catalogue language by its own name, English (the fallback) last
LANG_CHOICES = [(catalogue_text("language.name", lang), lang) for lang in (*LANGS[1:], LANGS[0])]


def t(key: str, lang: str, **params: Any) -> str:
    """A UI string (`ui.<key>`), or else an engine message code, in `lang`, with params filled in."""
    try:
        text = catalogue_text("ui." + key, lang)
    except KeyError:
        return render(key, params, lang)
    return text.format(**params) if params else text


def field_label(name: str, lang: str) -> str:
    """The label of the TrainConfig setting `name` in `lang`."""
    return catalogue_text(f"field.{name}.label", lang)


def field_help(name: str, lang: str) -> str:
    """The one-line help of the TrainConfig setting `name` in `lang`."""
    return catalogue_text(f"field.{name}.help", lang)


class Texts:
    """Remembers which component shows which string, so a language switch can relabel them all."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._entries: list[tuple[gr.components.Component, dict[str, tuple[str, str]]]] = []

    def add(self, component, **props: str):
        """Word `component`'s props (label=key, value=key, ...) in the current language and register it."""
        for prop, key in props.items():
            setattr(component, prop, t(key, self.lang))
        self._entries.append((component, {prop: ("ui", key) for prop, key in props.items()}))
        return component

    def worded_choices(self, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(label, value) pairs in the current language for (string key, value) pairs."""
        return self._word("choices", tuple(choices), self.lang)

    def add_choices(self, component, choices: list[tuple[str, str]]):
        """Register `component`, built with `worded_choices(choices)`, so a language switch rewords them
        (gradio keeps a component's constructor arguments, so the choices must be given there)."""
        self._entries.append((component, {"choices": ("choices", tuple(choices))}))
        return component

    def add_field(self, component, name: str):
        """Register a TrainConfig setting's component, whose label and info are that field's label and help."""
        self._entries.append((component, {"label": ("label", name), "info": ("help", name)}))
        return component

    @property
    def components(self) -> list:
        """The registered components, in the order `updates` words them."""
        return [component for component, _props in self._entries]

    def updates(self, lang: str) -> list:
        """One `gr.update` per registered component, worded in `lang`."""
        return [gr.update(**{prop: self._word(kind, key, lang) for prop, (kind, key) in props.items()})
                for _component, props in self._entries]

    @staticmethod
    def _word(kind: str, key, lang: str):
        """One registered prop's value in `lang`: choices, a field's label or help, or a UI string."""
        if kind == "choices":
            return [(t(text_key, lang), value) for text_key, value in key]
        if kind == "label":
            return field_label(key, lang)
        if kind == "help":
            return field_help(key, lang)
        return t(key, lang)


# Gradio words its own texts in the browser, in the browser's language, with the words a component got when it was
# drawn. So that they follow the page's language: Gradio's own words (the footer, its toasts, components drawn later)
# through the `changeLocale` of its front end (the module the page loaded, found among the loaded scripts; nothing
# changes where a release renames it), and the upload boxes' "Drop File Here - or - Click to Upload", drawn already,
# covered by the catalogue's `upload_drop` in a style sheet (hidden words are left out of the page's visible text).
FRONTEND_LOCALES = {"zh": "zh-CN", "en": "en"}
FRONTEND_LOCALE_JS = """(lang) => {
  const wanted = %s[lang] || "en";
  const words = %s;
  const urls = performance.getEntriesByType("resource").map((entry) => entry.name)
    .concat([...document.querySelectorAll("link[href], script[src]")].map((tag) => tag.href || tag.src));
  const core = urls.find((url) => /\\/assets\\/core-[\\w-]+\\.js$/.test(url));
  if (core) import(core).then((module) => module.changeLocale && module.changeLocale(wanted)).catch(() => {});
  let sheet = document.getElementById("studio-upload-words");
  if (!sheet) {
    sheet = document.head.appendChild(document.createElement("style"));
    sheet.id = "studio-upload-words";
  }
  sheet.textContent = '[data-testid="upload-text"] { visibility: hidden; font-size: 0; }'
    + ' [data-testid="upload-text"] .or { display: none; }'
    + ' [data-testid="upload-text"] [data-testid="upload-icon"] { visibility: visible; }'
    + ' [data-testid="upload-text"]::after { visibility: visible; display: block; font-size: var(--text-lg);'
    + ' content: ' + JSON.stringify(words[lang] || words.en) + '; }';
  return [];
}"""


def follow_frontend_locale(demo: gr.Blocks, language: gr.Radio) -> None:
    """Word Gradio's own texts in the page's language when the page opens and when the language is switched."""
    words = {lang: t("upload_drop", lang) for lang in LANGS}
    script = FRONTEND_LOCALE_JS % (json.dumps(FRONTEND_LOCALES), json.dumps(words, ensure_ascii=False))
    for trigger in (demo.load, language.input):  # the switch's own quick chain (see ui/__init__.py)
        trigger(None, [language], None, js=script, api_visibility="private", queue=False)
