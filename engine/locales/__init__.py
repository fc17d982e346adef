"""The message catalogue: `<lang>.yaml` per language in this folder, plus optional parts `<lang>.<topic>.yaml`
(one topic's texts, e.g. `zh.portal.yaml`), read once, for the CLI and the UI; a key given twice is an error.

Keys are namespaced (each file's header says how): `language.name` (the language's own name), `ui.*` (the web
app), `engine.*` (the codes the engine raises and reports), `hint.*` (hint codes, `hint_<name>` in code) and
`field.<name>.label` / `field.<name>.help` (each TrainConfig setting). A key missing in one language falls
back to English. Adding a language means adding one file; adding a text means one line per file.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent
ENGLISH = "en"
HINT_PREFIX = "hint_"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the same safe loader, in C when libyaml is there


def _flatten(tree: dict, source: Path, prefix: str = "") -> dict[str, str]:
    """Nested YAML mappings as one dict of dotted keys; every leaf must be a text."""
    flat: dict[str, str] = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, source, key + "."))
        elif isinstance(value, str):
            flat[key] = value
        else:
            raise ValueError(f"{source.name}: '{key}' should be a text, got {value!r}; put it in quotes.")
    return flat


def _read(path: Path) -> dict[str, str]:
    """One language file as dotted keys -> texts."""
    tree = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    if not isinstance(tree, dict):
        raise ValueError(f"{path.name}: should hold keys and their texts, one per line.")
    return _flatten(tree, path)


class Catalogue:
    """Every language's texts found in one folder of `<lang>.yaml` and `<lang>.<topic>.yaml` files."""

    def __init__(self, folder: Path) -> None:
        self.texts: dict[str, dict[str, str]] = {}
        for path in sorted(folder.glob("*.yaml"), key=lambda path: (path.name.count("."), path.name)):  # main first
            own = self.texts.setdefault(path.name.split(".")[0], {})
            part = _read(path)
            twice = sorted(set(part) & set(own))
            if twice:
                raise ValueError(f"{path.name}: {', '.join(twice)} already given in another file of its language.")
            own.update(part)
        self.langs: tuple[str, ...] = tuple(sorted(self.texts, key=lambda lang: (lang != ENGLISH, lang)))

    def text(self, key: str, lang: str) -> str:
        """`key`'s text in `lang`, else in English; KeyError when English lacks it too."""
        own = self.texts.get(lang, {})
        return own[key] if key in own else self.texts[ENGLISH][key]


@functools.cache
def catalogue() -> Catalogue:
    """This folder's catalogue, read on first use and kept."""
    return Catalogue(FOLDER)


LANGS = catalogue().langs


def catalogue_text(key: str, lang: str = ENGLISH) -> str:
    """The text of a namespaced key (e.g. "ui.title", "field.lora_r.help") in `lang`, falling back to English."""
    return catalogue().text(key, lang)


def message_key(code: str) -> str:
    """The catalogue key of an engine code: hint codes live under `hint.`, every other code under `engine.`."""
    if code.startswith(HINT_PREFIX):
        return "hint." + code.removeprefix(HINT_PREFIX)
    return "engine." + code


def message_codes() -> frozenset[str]:
    """Every engine code (hint codes included) that the English file words."""
    codes = set()
    for key in catalogue().texts[ENGLISH]:
        namespace, _, name = key.partition(".")
        if namespace == "engine":
            codes.add(name)
        elif namespace == "hint":
            codes.add(HINT_PREFIX + name)
    return frozenset(codes)


def wordings(code: str, *langs: str) -> tuple[str, ...]:
    """An engine code's own text in each of `langs` (default: every language), with no fallback: KeyError
    when one of them lacks it."""
    texts = catalogue().texts
    return tuple(texts[lang][message_key(code)] for lang in langs or LANGS)


def render(code: str, params: dict[str, Any] | None = None, lang: str = ENGLISH) -> str:
    """The sentence for engine `code` in `lang` with `params` filled in; unknown codes fall back to the code."""
    try:
        template = catalogue_text(message_key(code), lang)
    except KeyError:
        return code
    try:
        return template.format(**(params or {}))
    except (KeyError, IndexError, ValueError):
        return template


def render_error(error: Any, lang: str = ENGLISH) -> str:
    """One sentence for an EngineError, followed by its hint when it has one."""
    text = render(error.code, error.params, lang)
    if error.hint:
        text += " " + render(error.hint, error.params, lang)
    return text
