"""engine.data.versions: saves of one dataset folder take turns, so latest.jsonl is the newest version."""
from __future__ import annotations

import errno
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


def test_no_version_name_shows_while_its_text_is_written(tmp_path, monkeypatch):
    """A crash during the write leaves no empty or partial vNNNN.jsonl: the name appears only once the text is whole."""
    folder = tmp_path / "faq"
    real_write = versions.write_text_atomic
    seen_while_writing = []

    def write_and_look(path, text):
        seen_while_writing.append([p.name for p in versions.versions(folder)])
        real_write(path, text)

    monkeypatch.setattr(versions, "write_text_atomic", write_and_look)
    versions.save_version(folder, "first\n")
    versions.save_version(folder, "second\n")
    assert seen_while_writing == [[], ["v0001.jsonl"], ["v0001.jsonl"], ["v0001.jsonl", "v0002.jsonl"]]
    assert sorted(p.name for p in folder.iterdir()) == ["latest.jsonl", "v0001.jsonl", "v0002.jsonl"]
    assert (folder / "v0002.jsonl").read_text(encoding="utf-8") == "second\n"


def test_a_failure_in_the_middle_of_writing_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from engine.system import files

    folder = tmp_path / "faq"
    versions.save_version(folder, "first\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)  # the text is half on its way to the disk
    with pytest.raises(OSError):
        versions.save_version(folder, "second, much longer\n" * 1000)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["latest.jsonl", "v0001.jsonl"]  # no partial or pending file
    assert (folder / versions.LATEST).read_text(encoding="utf-8") == "first\n"
    assert versions.save_version(folder, "second\n").name == "v0002.jsonl"


def test_a_name_taken_by_another_process_meanwhile_is_skipped(tmp_path, monkeypatch):
    folder = tmp_path / "faq"
    versions.save_version(folder, "first\n")
    real_versions = versions.versions

    def stale(path):
        """Another process saved v0002 after this one listed the folder."""
        listed = real_versions(path)
        (path / "v0002.jsonl").write_text("theirs\n", encoding="utf-8")
        return listed

    monkeypatch.setattr(versions, "versions", stale)
    assert versions.save_version(folder, "mine\n").name == "v0003.jsonl"
    assert (folder / "v0002.jsonl").read_text(encoding="utf-8") == "theirs\n"
    assert (folder / "v0003.jsonl").read_text(encoding="utf-8") == "mine\n"


def test_a_file_system_without_hard_links_still_saves_new_versions(tmp_path, monkeypatch):
    folder = tmp_path / "faq"
    versions.save_version(folder, "first\n")

    def no_links(source, target):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(versions.os, "link", no_links)
    assert versions.save_version(folder, "second\n").name == "v0002.jsonl"
    assert (folder / "v0002.jsonl").read_text(encoding="utf-8") == "second\n"
    assert sorted(p.name for p in folder.iterdir()) == ["latest.jsonl", "v0001.jsonl", "v0002.jsonl"]
    assert (folder / "v0001.jsonl").read_text(encoding="utf-8") == "first\n"  # never written over


def test_an_unexpected_link_error_is_raised_and_leaves_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "faq"

    def read_only(source, target):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(versions.os, "link", read_only)
    with pytest.raises(OSError):
        versions.save_version(folder, "rows\n")
    assert list(folder.iterdir()) == []
