"""Kept uploads: a copy in the data folder's uploads/, so runs and studies outlive the web server's upload cleanup."""
from __future__ import annotations

import pytest

from engine import EngineError, Studio, Workspace
from engine.data.uploads import keep_upload


def test_an_upload_is_kept_under_its_name_and_a_same_named_other_file_gets_a_number(tmp_path):
    first, second = tmp_path / "a" / "rows.jsonl", tmp_path / "b" / "rows.jsonl"
    for path, text in ((first, '{"q": 1}\n'), (second, '{"q": 2}\n')):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
    kept = tmp_path / "kept"
    assert keep_upload(first, kept) == kept / "rows.jsonl"
    assert keep_upload(first, kept) == kept / "rows.jsonl"  # the same file again: the copy is reused
    assert keep_upload(second, kept) == kept / "rows-2.jsonl"
    assert (kept / "rows-2.jsonl").read_text(encoding="utf-8") == '{"q": 2}\n'
    first.unlink()  # the server's cleanup removes the temporary upload: the kept copy stays
    assert (kept / "rows.jsonl").read_text(encoding="utf-8") == '{"q": 1}\n'
    assert sorted(p.name for p in kept.iterdir()) == ["rows-2.jsonl", "rows.jsonl"]  # no temporary files left


def test_a_file_that_cannot_be_read_is_a_worded_error(tmp_path):
    with pytest.raises(EngineError) as caught:
        keep_upload(tmp_path / "gone.csv", tmp_path / "kept")
    assert caught.value.code == "upload_not_kept" and caught.value.params["name"] == "gone.csv"
    assert caught.value.hint == "hint_upload_again"


def test_the_studio_keeps_only_uploads_inside_its_workspace(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "q.csv").write_text("prompt\nhi\n", encoding="utf-8")
    (tmp_path / "secret.csv").write_text("prompt\nno\n", encoding="utf-8")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data", workspace=Workspace.of(tmp_path / "data", inbox))
    assert studio.keep_upload(inbox / "q.csv", "upload") == tmp_path / "data" / "uploads" / "q.csv"
    with pytest.raises(EngineError) as caught:
        studio.keep_upload(tmp_path / "secret.csv", "upload")
    assert caught.value.code == "path_outside_workspace"
    assert not (tmp_path / "data" / "uploads" / "secret.csv").exists()
