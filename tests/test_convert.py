"""engine.data.convert: the standard-library row rules the engine and the exported script share."""
from __future__ import annotations

import pytest

from engine.data import convert
from engine.data.mapping import propose_mapping


def test_a_bad_row_names_its_code_field_and_params():
    with pytest.raises(convert.BadRow) as bad:
        convert.to_example({"messages": [{"role": "user", "content": "q"}, {"role": "alien", "content": "a"}]},
                           "messages")
    assert (bad.value.code, bad.value.field, bad.value.params) == ("dataset_bad_role", "messages",
                                                                   {"turn": 2, "role": "alien"})
    with pytest.raises(convert.BadRow) as bad:
        convert.to_example({"text": 3}, "text")
    assert (bad.value.code, bad.value.field, bad.value.params) == ("dataset_wrong_type", "text", {"expected": "text"})


def test_jsonl_rows_number_lines_and_report_the_bad_ones():
    heard = []
    rows = convert.jsonl_rows('{"text": "a"}\n\n{oops\n"bare"\n', lambda number, detail: heard.append(number))
    assert rows == [(1, {"text": "a"}), (4, {"text": "bare"})]
    assert heard == [3]


def test_json_documents():
    assert convert.json_document_rows("  ") == []
    assert convert.json_document_rows('{"prompt": "q", "completion": "a"}') == [{"prompt": "q", "completion": "a"}]
    assert convert.json_document_rows('{"version": 1, "data": [{"text": "t"}, "u"]}') == [{"text": "t"},
                                                                                          {"text": "u"}]
    with pytest.raises(ValueError):
        convert.json_document_rows("3")


@pytest.mark.parametrize("columns", [["Question", "Answer"], ["instruction", "response", "历史"], ["对话"], ["x"]])
def test_detect_columns_is_the_proposed_mapping(columns):
    fmt, found = convert.detect_columns(columns)
    assert propose_mapping(columns).format == fmt and propose_mapping(columns).columns == found
    assert convert.missing_fields(fmt, found) == []


def test_list_cells_are_parsed_only_when_json():
    row = {"H": '[["q", "a"]]', "I": "hi", "O": "[not json"}
    assert convert.rename_columns(row, {"history": "H", "instruction": "I", "output": "O"}) == {
        "history": [["q", "a"]], "instruction": "hi", "output": "[not json"}
