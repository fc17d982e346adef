"""engine.data.versions: saves of one dataset folder take turns, so latest.jsonl is the newest version."""
from __future__ import annotations

import threading

import pytest

from engine.data import versions


def test_concurrent_saves_leave_latest_equal_to_the_newest_version(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "faq"
    same_folder = tmp_path / "data" / ".." / "data" / "faq"  # another spelling of the same folder
    real_write = versions.write_text_atomic
    second = threading.Thread(target=versions.save_version, args=(same_folder, "second\n"))

    def write_slowly(path, text):
        """While the first save is about to write latest.jsonl, let a second editor save the same dataset."""
        if path.name == versions.LATEST and text == "first\n":
            second.start()
            second.join(timeout=1.0)  # without turns the second save finishes here, before the first one's latest
        real_write(path, text)

    monkeypatch.setattr(versions, "write_text_atomic", write_slowly)
    first = versions.save_version(folder, "first\n")
    second.join(timeout=10)
    assert not second.is_alive()
    saved = versions.versions(folder)
    assert [p.name for p in saved] == ["v0001.jsonl", "v0002.jsonl"] and first == saved[0]
    assert saved[-1].read_text(encoding="utf-8") == "second\n"
    assert (folder / versions.LATEST).read_text(encoding="utf-8") == "second\n"


def test_a_failed_write_gives_the_version_number_back(tmp_path, monkeypatch):
    folder = tmp_path / "faq"

    def fail(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(versions, "write_text_atomic", fail)
    with pytest.raises(OSError):
        versions.save_version(folder, "rows\n")
    monkeypatch.undo()
    assert versions.versions(folder) == []
    assert versions.save_version(folder, "rows\n").name == "v0001.jsonl"
