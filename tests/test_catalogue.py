"""The message catalogue: one readable YAML file per language, the same keys and placeholders in each, and a
loader that finds a new language without code changes."""
from __future__ import annotations

import ast
import re
import shutil
import string
from pathlib import Path

import pytest
import yaml

from engine import FIELDS
from engine.locales import FOLDER, LANGS, Catalogue, catalogue, catalogue_text, message_codes, message_key, render

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(FOLDER.glob("*.yaml"))
TEXTS = catalogue().texts
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def placeholders(text: str) -> set[str]:
    """The `{names}` that `text.format` fills in."""
    return {name for _text, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def test_the_languages_come_from_the_files_english_first():
    assert sorted({path.name.split(".")[0] for path in FILES}) == ["en", "zh"]
    assert LANGS == catalogue().langs == ("en", "zh")
    assert catalogue() is catalogue()  # read once
    assert catalogue_text("language.name", "en") == "English" and catalogue_text("language.name", "zh") == "中文"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_each_file_is_block_style_yaml_with_one_text_per_line(path):
    source = path.read_text(encoding="utf-8")
    nodes = [yaml.compose(source)]
    while nodes:
        node = nodes.pop()
        if isinstance(node, yaml.MappingNode):
            assert not node.flow_style, f"{path.name}:{node.start_mark.line + 1} is not block style"
            nodes += [value for _key, value in node.value]
        else:
            assert isinstance(node, yaml.ScalarNode), f"{path.name}:{node.start_mark.line + 1} is not a text"
            assert node.start_mark.line == node.end_mark.line, f"{path.name}:{node.start_mark.line + 1} spans lines"
    assert "\\u" not in source  # Chinese is written as UTF-8, not escaped
    assert all(isinstance(text, str) and text.strip() for text in TEXTS[path.name.split(".")[0]].values())


def test_chinese_is_chinese():
    assert CHINESE.search(catalogue_text("ui.title", "zh"))
    same = {key for key, text in TEXTS["zh"].items() if text == TEXTS["en"][key] and CHINESE.search(text) is None}
    assert len(same) < len(TEXTS["zh"]) // 10, sorted(same)  # names such as "DoRA" or "Top-p" stay as they are


@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_language_has_the_english_keys_and_placeholders(lang):
    assert set(TEXTS[lang]) == set(TEXTS["en"]), set(TEXTS[lang]) ^ set(TEXTS["en"])
    differ = {key for key, text in TEXTS["en"].items() if placeholders(text) != placeholders(TEXTS[lang][key])}
    assert differ == set()


def test_the_namespaces_are_the_documented_ones():
    namespaces = {key.split(".")[0] for key in TEXTS["en"]}
    assert namespaces == {"language", "ui", "engine", "hint", "field"}
    assert "hint.fix_rows" in TEXTS["en"] and "engine.dataset_missing_field" in TEXTS["en"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_setting_has_a_label_and_help(lang):
    for name in FIELDS:
        assert TEXTS[lang][f"field.{name}.label"].strip(), name
        assert TEXTS[lang][f"field.{name}.help"].strip(), name
    worded = {key.split(".")[1] for key in TEXTS[lang] if key.startswith("field.")}
    assert worded == set(FIELDS)
    assert {key.rsplit(".", 1)[1] for key in TEXTS[lang] if key.startswith("field.")} == {"label", "help"}


def test_codes_map_to_namespaced_keys_and_back():
    assert message_key("hint_fix_rows") == "hint.fix_rows"
    assert message_key("dataset_missing_field") == "engine.dataset_missing_field"
    assert {"hint_fix_rows", "dataset_missing_field", "state_DONE"} <= message_codes()
    assert all(message_key(code) in TEXTS["en"] for code in message_codes())
    assert not any(code.startswith(("engine.", "hint.", "ui.")) for code in message_codes())


def _folder_with(tmp_path: Path, name: str, text: str) -> Path:
    """A copy of the catalogue folder in `tmp_path` with one more file, `name`, holding `text`."""
    for path in FILES:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_a_third_language_file_shows_up_without_code_changes(tmp_path):
    folder = _folder_with(tmp_path, "fr.yaml", "language:\n  name: Français\nui:\n  title: '## Atelier'\n")
    found = Catalogue(folder)
    assert found.langs == ("en", "fr", "zh")
    assert found.text("language.name", "fr") == "Français" and found.text("ui.title", "fr") == "## Atelier"
    assert found.text("ui.tab_chat", "fr") == "4. Chat"  # missing in French: English
    assert found.text("ui.tab_chat", "zh") == "4. 对话"
    with pytest.raises(KeyError):
        found.text("ui.no_such_key", "fr")  # missing everywhere


def test_a_key_missing_everywhere_is_a_key_error_and_render_falls_back_to_the_code():
    with pytest.raises(KeyError):
        catalogue_text("ui.no_such_key", "zh")
    with pytest.raises(KeyError):
        catalogue_text("field.no_such_field.label")
    assert render("no_such_code", {"x": 1}, "zh") == "no_such_code"
    assert catalogue_text("ui.title", "xx") == catalogue_text("ui.title", "en") == "## Fine-tuning studio"


def test_a_topic_part_adds_to_its_language_and_may_not_repeat_a_key(tmp_path):
    folder = _folder_with(tmp_path, "zh.extra.yaml", "ui:\n  extra_line: '额外'\n")
    assert Catalogue(folder).text("ui.extra_line", "zh") == "额外"
    (folder / "zh.extra.yaml").write_text("ui:\n  tab_chat: '对话'\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"zh\.extra\.yaml: ui\.tab_chat already given"):
        Catalogue(folder)


@pytest.mark.parametrize(("text", "message"), [
    ("ui:\n  tab_chat: 4\n", r"de\.yaml: 'ui\.tab_chat' should be a text"),
    ("ui:\n  tab_chat:\n", r"de\.yaml: 'ui\.tab_chat' should be a text"),
    ("- a list\n", r"de\.yaml: should hold keys and their texts"),
])
def test_a_file_that_is_not_keys_and_texts_is_named(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        Catalogue(_folder_with(tmp_path, "de.yaml", text))


@pytest.mark.parametrize("module", ["engine/locales/__init__.py", "ui/i18n.py"])
def test_no_words_left_in_python(module):
    source = (ROOT / module).read_text(encoding="utf-8")
    assert CHINESE.search(source) is None
    tuples = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Tuple)
              and sum(isinstance(item, ast.Constant) and isinstance(item.value, str) for item in node.elts) >= 2]
    assert tuples == [], [ast.unparse(node) for node in tuples]
