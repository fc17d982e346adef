"""The Export tab's handlers called directly with a fake studio: the written paths, downloads, commands, notes,
progress worded in the page's language, and engine errors worded."""
from __future__ import annotations

import dataclasses
import errno
import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest

from engine.errors import EngineError
from engine.locales import catalogue_text, render, render_error
from engine.training.adapters import AdapterChoice
from ui import export_tab
from ui.export_tab import ExportView

VIEW = ExportView(**{f.name: f.name for f in dataclasses.fields(ExportView)})


@dataclass
class Advice:
    command: str
    warnings: list


class FakeStudio:
    """Writes small files where the real exports would, and records the progress steps it reports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def export_choices(self):
        return [AdapterChoice("r1", "r1"), AdapterChoice("r1@checkpoint-2", "r1", 2)]

    def gguf_types(self):
        return ["f16", "bf16", "q8_0", "q4_0"]

    def export_adapter_package(self, choice, progress):
        if not choice:
            raise EngineError("run_not_found", {"path": "-"}, hint="hint_pick_run")
        progress("engine.export_step_facts", 0.5)
        return self._file(f"{choice}-adapter.zip")

    def export_modelfile(self, choice, gguf_type, progress):
        self._file(f"{choice}-{gguf_type}.gguf")
        return self._file("Modelfile"), f"ollama create {choice} -f {self.folder / 'Modelfile'}"

    def vllm_advice(self, choice):
        return Advice("vllm serve base --enable-lora", [("export_no_space", {"folder": "f", "needed_gb": 1,
                                                                              "free_gb": 0})])

    def merge_notes(self, choice):
        return [("export_step_done", {})]

    def export_merged(self, choice, shard_size, progress):
        (self.folder / "merged").mkdir(exist_ok=True)
        return self.folder / "merged"

    def ensure_free_space(self, folder, needed_bytes):
        self.room_asked = (Path(folder), needed_bytes)

    def _file(self, name: str) -> Path:
        path = self.folder / name
        path.write_text(name, encoding="utf-8")
        return path


class Steps(list):
    """A gr.Progress stand-in that records (fraction, desc)."""

    def __call__(self, fraction, desc=None):
        self.append((fraction, desc))


def test_the_picker_lists_adapters_and_the_types_this_machine_writes(tmp_path):
    shown = export_tab.refresh_choices(FakeStudio(tmp_path), VIEW, "en")
    assert shown[VIEW.choice].value == "r1" and len(shown[VIEW.choice].choices) == 2
    assert shown[VIEW.gguf_type].value == "q8_0" and shown[VIEW.gguf_type].choices[0][1] == "f16"
    chosen = shown[VIEW.choice].choices[1][1]
    reworded = export_tab.refresh_choices(FakeStudio(tmp_path), VIEW, "zh", chosen)  # the language switch
    assert reworded[VIEW.choice].value == chosen  # keeps what was chosen
    assert export_tab.refresh_choices(FakeStudio(tmp_path), VIEW, "zh", "gone")[VIEW.choice].value == "r1"


def test_each_export_adds_its_paths_and_downloads_with_worded_progress(tmp_path):
    studio, steps = FakeStudio(tmp_path), Steps()
    first = export_tab.export_package(studio, VIEW, "zh", "r1", {}, progress=steps)
    assert steps == [(0.5, catalogue_text("engine.export_step_facts", "zh"))]
    assert first[VIEW.written]["exports"] == [["package", str(tmp_path / "r1-adapter.zip")]]
    assert catalogue_text("ui.export_kind_package", "zh") in first[VIEW.paths]
    [download] = first[VIEW.files]
    assert Path(download).read_text(encoding="utf-8") == "r1-adapter.zip" and not download.startswith(str(tmp_path))
    second = export_tab.export_ollama(studio, VIEW, "en", "r1", "f16", first[VIEW.written], progress=Steps())
    assert [kind for kind, _path in second[VIEW.written]["exports"]] == ["package", "gguf", "modelfile"]
    assert second[VIEW.ollama].startswith("ollama create r1 -f ")
    assert sorted(Path(p).name for p in second[VIEW.files]) == ["Modelfile", "r1-f16.gguf"]


def test_a_folder_is_named_by_path_only_and_the_merge_notes_are_shown(tmp_path):
    shown = export_tab.export_merged(FakeStudio(tmp_path), VIEW, "en", "r1", "1GB", {}, progress=Steps())
    assert shown[VIEW.files] is None
    assert catalogue_text("ui.export_path_only", "en") in shown[VIEW.paths]
    assert render("export_step_done", lang="en") in shown[VIEW.notes]


def test_the_vllm_line_comes_with_its_warnings_and_leaves_the_downloads(tmp_path):
    shown = export_tab.vllm_line(FakeStudio(tmp_path), VIEW, "en", "r1", {})
    assert shown[VIEW.vllm] == "vllm serve base --enable-lora"
    assert "Not enough free disk space" in shown[VIEW.notes]
    assert isinstance(shown[VIEW.files], type(gr.skip())) and isinstance(shown[VIEW.ollama], type(gr.skip()))


def test_an_engine_error_is_worded_in_the_pages_language(tmp_path):
    with pytest.raises(gr.Error) as worded:
        export_tab.export_package(FakeStudio(tmp_path), VIEW, "zh", None, {}, progress=Steps())
    assert worded.value.message == render_error(EngineError("run_not_found", {"path": "-"}, hint="hint_pick_run"),
                                                "zh")


def test_large_files_are_not_copied_for_download(tmp_path, monkeypatch):
    small, large = tmp_path / "Modelfile", tmp_path / "big.gguf"
    small.write_text("FROM ./big.gguf", encoding="utf-8")
    large.write_bytes(b"x" * 64)
    monkeypatch.setattr(export_tab, "DOWNLOAD_LIMIT", 32)
    studio = FakeStudio(tmp_path)
    offered, _folder = export_tab.download_copies(studio, [str(small), str(large), str(tmp_path)])
    assert [Path(p).name for p in offered] == ["Modelfile"]
    assert export_tab.download_copies(studio, [str(large)]) == ([], None)


def test_a_gguf_over_512_mb_is_named_by_its_path_only():
    assert export_tab.DOWNLOAD_LIMIT == 512 * 1024 ** 2


def test_downloads_are_hard_links_in_a_new_folder_and_the_previous_one_goes(tmp_path):
    studio = FakeStudio(tmp_path)
    first = export_tab.export_package(studio, VIEW, "en", "r1", {}, progress=Steps())
    [download] = first[VIEW.files]
    assert os.path.samefile(download, tmp_path / "r1-adapter.zip")  # a link: no second copy of the bytes
    assert first[VIEW.written]["downloads"] == str(Path(download).parent)
    second = export_tab.export_package(studio, VIEW, "en", "r1", first[VIEW.written], progress=Steps())
    assert not Path(download).parent.exists() and Path(second[VIEW.files][0]).is_file()
    export_tab.remove_downloads(str(tmp_path))  # a folder the tab did not make is never removed
    assert tmp_path.is_dir()


def test_a_download_is_copied_after_the_room_is_checked_where_links_cannot_be_made(tmp_path, monkeypatch):
    def cross_device(_source, _target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(export_tab.os, "link", cross_device)
    studio = FakeStudio(tmp_path)
    [download] = export_tab.export_package(studio, VIEW, "en", "r1", {}, progress=Steps())[VIEW.files]
    assert not os.path.samefile(download, tmp_path / "r1-adapter.zip")
    assert Path(download).read_text(encoding="utf-8") == "r1-adapter.zip"
    assert studio.room_asked == (Path(download).parent, len("r1-adapter.zip"))


def test_the_written_paths_follow_the_language_switch(tmp_path):
    state = export_tab.export_package(FakeStudio(tmp_path), VIEW, "en", "r1", {}, progress=Steps())[VIEW.written]
    assert catalogue_text("ui.export_kind_package", "zh") in export_tab.relabel_paths("zh", state)
    assert catalogue_text("ui.export_kind_package", "en") in export_tab.relabel_paths("en", state)
    assert export_tab.relabel_paths("zh", {}) == catalogue_text("ui.export_nothing_yet", "zh")
