"""Export tab: take an adapter out of the studio — the adapter package (zip with its model card), the merged model,
a GGUF file with its Ollama Modelfile and `ollama create` line, the `vllm serve` line, and the run's report — each
with progress, the written paths, downloads of the files small enough to fetch through the browser, and warnings.

Downloads are hard links (else copies, room on disk checked first) in a new temporary folder for each export, the
session's previous one removed, so the web server hands out exactly the files asked for and never serves from the
runs folder itself; a file over DOWNLOAD_LIMIT (a real model's GGUF) is named by its path only. The list of written
paths follows the page's language. The handlers `report_for_run` and `report_for_study`
also serve the *Report* buttons of the Training and Study tabs.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from engine import Studio, catalogue_text, render
from ui import present
from ui.chat_tab import MODEL_LANE
from ui.i18n import t
from ui.page import Page
from ui.study_organise import chosen_study
from ui.wiring import bind, worded_errors

DOWNLOAD_LIMIT = 512 * 1024 ** 2  # bytes: a larger file (a real model's GGUF) is named by its path, not offered
DOWNLOAD_PREFIX = "export-"  # the temporary download folders' names start with it
SHARD_SIZES = ["500MB", "1GB", "2GB", "5GB", "10GB"]
DEFAULT_GGUF_TYPE = "q8_0"


@dataclass
class ExportView:
    """The Export tab's components that handlers fill: the adapter picker and GGUF type picker, the session's
    written files (state), their paths, the downloads, the two commands to copy and the notes."""

    choice: Any
    gguf_type: Any
    written: Any  # session state: {"exports": [kind, path] of each export written from this page, in order,
    #               "downloads": the folder of the last export's downloads}
    paths: Any
    files: Any
    ollama: Any
    vllm: Any
    notes: Any

    @property
    def shown(self) -> list:
        """The outputs of every export handler, in the API's order."""
        return [self.written, self.paths, self.files, self.ollama, self.vllm, self.notes]


def step_reporter(progress: Callable, lang: str) -> Callable[[str, float], None]:
    """An engine progress callback (catalogue code, fraction) driving a `gr.Progress` worded in `lang`."""
    def report(code: str, fraction: float) -> None:
        try:
            text = catalogue_text(code, lang)
        except KeyError:
            text = code
        progress(fraction, desc=text)
    return report


def download_copies(studio: Studio, paths: list[str], previous: str | None = None) -> tuple[list[str], str | None]:
    """The given files that are small enough to download, linked (else copied, once the disk has room) into a new
    temporary folder, and that folder (None when there is nothing to offer); folders and files over DOWNLOAD_LIMIT
    are left out (their paths are shown). The session's previous download folder `previous` is removed first."""
    remove_downloads(previous)
    small = [Path(p) for p in paths if Path(p).is_file() and Path(p).stat().st_size <= DOWNLOAD_LIMIT]
    if not small:
        return [], None
    folder = Path(tempfile.mkdtemp(prefix=DOWNLOAD_PREFIX))
    return [str(offered(studio, path, folder / path.name)) for path in small], str(folder)


def offered(studio: Studio, path: Path, target: Path) -> Path:
    """`path` at `target`: a hard link (no bytes written), or a copy where the two folders are on different disks."""
    try:
        os.link(path, target)
    except OSError:
        studio.ensure_free_space(target.parent, path.stat().st_size)
        shutil.copy2(path, target)
    return target


def remove_downloads(folder: str | None) -> None:
    """Remove a download folder this tab made (a temporary `export-...` folder; any other path is left alone)."""
    if folder and Path(folder).parent == Path(tempfile.gettempdir()) and Path(folder).name.startswith(
            DOWNLOAD_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


def exports_of(state: dict | None) -> list:
    """The [kind, path] exports a session's state holds."""
    return list((state or {}).get("exports", []))


def paths_text(written: list, lang: str) -> str:
    """The written exports, one line each (kind: path), with a note for the ones too large to download."""
    if not written:
        return t("export_nothing_yet", lang)
    lines = []
    for kind, path in written:
        line = f"- **{t('export_kind_' + kind, lang)}**: `{path}`"
        if Path(path).is_dir() or (Path(path).is_file() and Path(path).stat().st_size > DOWNLOAD_LIMIT):
            line += f" — {t('export_path_only', lang)}"
        lines.append(line)
    return "\n".join(lines)


def shown_after(studio: Studio, view: ExportView, lang: str, state: dict | None, added: list, **extra: Any) -> dict:
    """`view.shown` once the exports `added` ([kind, path] each) join the session's `state`: the paths of all, the
    downloads of the added ones in a new folder (left as they are when none was added), and the commands and notes
    given in `extra` (the commands else left as they are)."""
    written = [entry for entry in exports_of(state) if entry not in added] + added
    downloads, files = (state or {}).get("downloads"), gr.skip()
    if added:
        offered_files, downloads = download_copies(studio, [path for _kind, path in added], downloads)
        files = offered_files or None
    return {view.written: {"exports": written, "downloads": downloads}, view.paths: paths_text(written, lang),
            view.files: files, view.ollama: extra.get("ollama", gr.skip()), view.vllm: extra.get("vllm", gr.skip()),
            view.notes: extra.get("notes", "")}


def relabel_paths(lang: str, state: dict | None) -> str:
    """Inputs: language, the session's state. Output: the written paths, worded in the language switched to."""
    return paths_text(exports_of(state), lang)


def refresh_choices(studio: Studio, view: ExportView, lang: str, current: str | None = None) -> dict:
    """Inputs: language, the adapter chosen now. Outputs: the adapter picker (final adapters and complete checkpoints,
    newest run first, worded in `lang`, keeping the chosen one while it exists) and the GGUF types this machine can
    write."""
    choices = present.adapter_choices(studio.export_choices(), lang)
    values = [value for _label, value in choices]
    types = studio.gguf_types()
    chosen = current if current in values else (values[0] if values else None)
    return {view.choice: gr.Dropdown(choices=choices, value=chosen),
            view.gguf_type: gr.Dropdown(choices=types, value=DEFAULT_GGUF_TYPE if DEFAULT_GGUF_TYPE in types
                                        else (types[0] if types else None))}


@worded_errors
def export_package(studio: Studio, view: ExportView, lang: str, choice: str | None, written: dict | None,
                   progress=gr.Progress()) -> dict:
    """Inputs: language, adapter choice (the session's written files in state). Outputs: `view.shown`, with the
    adapter package zip (PEFT folder, model card, config, loss curve, metrics)."""
    path = studio.export_adapter_package(choice or "", step_reporter(progress, lang))
    return shown_after(studio, view, lang, written, [["package", str(path)]])


@worded_errors
def export_merged(studio: Studio, view: ExportView, lang: str, choice: str | None, shard_size: str,
                  written: dict | None, progress=gr.Progress()) -> dict:
    """Inputs: language, adapter choice, the shard size. Outputs: `view.shown`, with the merged model folder and
    what to know about the merge (a QLoRA run merged into a 16-bit reload of its base)."""
    notes = "\n".join(f"- {render(code, params, lang)}" for code, params in studio.merge_notes(choice or ""))
    path = studio.export_merged(choice or "", shard_size or "2GB", step_reporter(progress, lang))
    return shown_after(studio, view, lang, written, [["merged", str(path)]], notes=notes)


@worded_errors
def export_gguf(studio: Studio, view: ExportView, lang: str, choice: str | None, gguf_type: str | None,
                written: dict | None, progress=gr.Progress()) -> dict:
    """Inputs: language, adapter choice, GGUF type. Outputs: `view.shown`, with the GGUF file."""
    path = studio.export_gguf(choice or "", gguf_type or DEFAULT_GGUF_TYPE, step_reporter(progress, lang))
    return shown_after(studio, view, lang, written, [["gguf", str(path)]])


@worded_errors
def export_ollama(studio: Studio, view: ExportView, lang: str, choice: str | None, gguf_type: str | None,
                  written: dict | None, progress=gr.Progress()) -> dict:
    """Inputs: language, adapter choice, GGUF type. Outputs: `view.shown`, with the GGUF (written first when
    missing), the Modelfile beside it and the `ollama create` line to copy."""
    gguf_type = (gguf_type or DEFAULT_GGUF_TYPE).lower()
    modelfile, command = studio.export_modelfile(choice or "", gguf_type, step_reporter(progress, lang))
    gguf = next(Path(modelfile).parent.glob(f"*-{gguf_type}.gguf"), None)
    added = ([["gguf", str(gguf)]] if gguf else []) + [["modelfile", str(modelfile)]]
    return shown_after(studio, view, lang, written, added, ollama=command)


@worded_errors
def vllm_line(studio: Studio, view: ExportView, lang: str, choice: str | None, written: dict | None) -> dict:
    """Inputs: language, adapter choice. Outputs: `view.shown`, with the `vllm serve` line to copy and its warnings
    (a rank vLLM does not take, `modules_to_save`, a base given as a local folder)."""
    advice = studio.vllm_advice(choice or "")
    notes = "\n".join(f"- ⚠️ {render(code, params, lang)}" for code, params in advice.warnings)
    return shown_after(studio, view, lang, written, [], vllm=advice.command, notes=notes)


@worded_errors
def export_report(studio: Studio, view: ExportView, lang: str, choice: str | None, written: dict | None,
                  progress=gr.Progress()) -> dict:
    """Inputs: language, adapter choice. Outputs: `view.shown`, with the run's HTML report (sample answers of
    this adapter generated now)."""
    path = studio.write_report(choice or "", lang, step_reporter(progress, lang))
    return shown_after(studio, view, lang, written, [["report", str(path)]])


@worded_errors
def report_for_run(studio: Studio, lang: str, run_id: str | None, progress=gr.Progress()) -> str | None:
    """The Training tab's *Report* button. Inputs: language, a run. Output: a download of its HTML report."""
    path = studio.write_report(run_id or "", lang, step_reporter(progress, lang))
    gr.Info(t("export_report_written", lang, path=path))
    return download_copies(studio, [str(path)])[0][0]


@worded_errors
def report_for_study(studio: Studio, lang: str, study_id: int | None, progress=gr.Progress()) -> str | None:
    """The Study tab's *Report* button. Inputs: language, a study. Output: a download of the HTML report of the
    run whose adapter the study judged (with this study's results in it when it is the newest with votes)."""
    source = studio.export_source_at(studio.study(chosen_study(study_id, lang))["run_dir"])
    path = studio.write_report(source, lang, step_reporter(progress, lang))
    gr.Info(t("export_report_written", lang, path=path))
    return download_copies(studio, [str(path)])[0][0]


@dataclass
class ExportLayout(ExportView):
    """The whole tab: the components handlers fill, the shard size and the buttons."""

    refresh: Any
    shard_size: Any
    package: Any
    merged: Any
    gguf: Any
    modelfile: Any
    vllm_button: Any
    report: Any


def build(page: Page) -> None:
    """Lay out the Export tab and wire its events (the long exports share the model's queue lane)."""
    view, studio, lang = _layout(page), page.studio, page.language
    picked = [lang, view.choice]
    page.demo.load(bind(refresh_choices, studio, view), [lang], [view.choice, view.gguf_type],
                   api_name="export_choices")
    view.refresh.click(bind(refresh_choices, studio, view), [lang], [view.choice, view.gguf_type],
                       api_visibility="private")
    view.package.click(bind(export_package, studio, view), picked + [view.written], view.shown,
                       api_name="export_package")
    view.merged.click(bind(export_merged, studio, view), picked + [view.shard_size, view.written], view.shown,
                      api_name="export_merged", concurrency_id=MODEL_LANE)
    view.gguf.click(bind(export_gguf, studio, view), picked + [view.gguf_type, view.written], view.shown,
                    api_name="export_gguf", concurrency_id=MODEL_LANE)
    view.modelfile.click(bind(export_ollama, studio, view), picked + [view.gguf_type, view.written], view.shown,
                         api_name="export_ollama", concurrency_id=MODEL_LANE)
    view.vllm_button.click(bind(vllm_line, studio, view), picked + [view.written], view.shown,
                           api_name="export_vllm")
    view.report.click(bind(export_report, studio, view), picked + [view.written], view.shown,
                      api_name="export_report", concurrency_id=MODEL_LANE)
    page.language_switch.add(relabel_paths, [lang, view.written], [view.paths])
    for switch in (page.language_switch, page.tab_switch):  # reworded, and offering runs trained since
        switch.add(bind(refresh_choices, studio, view), [lang, view.choice], [view.choice, view.gguf_type])


def _layout(page: Page) -> ExportLayout:
    """The tab's components, laid out: the picker, the exports in three rows, then what was written."""
    texts = page.texts
    texts.add(gr.Markdown(elem_id="export-intro"), value="export_intro")
    with gr.Row():
        choice = texts.add(gr.Dropdown(choices=[], elem_id="export-run", scale=4), label="export_run")
        refresh = texts.add(gr.Button(elem_id="export-refresh", scale=1), value="export_refresh")
    with gr.Row():
        package = texts.add(gr.Button(variant="primary", elem_id="export-package"), value="export_package")
        vllm_button = texts.add(gr.Button(elem_id="export-vllm"), value="export_vllm")
        report = texts.add(gr.Button(elem_id="export-report"), value="export_report")
    with gr.Row():
        gguf_type = texts.add(gr.Dropdown(choices=[DEFAULT_GGUF_TYPE], value=DEFAULT_GGUF_TYPE,
                                          elem_id="export-gguf-type", scale=1), label="export_gguf_type",
                              info="export_gguf_type_info")
        gguf = texts.add(gr.Button(elem_id="export-gguf", scale=1), value="export_gguf")
        modelfile = texts.add(gr.Button(elem_id="export-ollama", scale=1), value="export_ollama")
    with gr.Row():
        shard_size = texts.add(gr.Dropdown(choices=SHARD_SIZES, value="2GB", allow_custom_value=True,
                                           elem_id="export-shard-size", scale=1), label="export_shard_size")
        merged = texts.add(gr.Button(elem_id="export-merged", scale=2), value="export_merged")
    paths = gr.Markdown(elem_id="export-paths")
    notes = gr.Markdown(elem_id="export-notes")
    files = texts.add(gr.File(interactive=False, file_count="multiple", elem_id="export-files"), label="export_files")
    ollama = texts.add(gr.Textbox(interactive=False, buttons=["copy"], elem_id="export-ollama-command"),
                       label="export_ollama_command")
    vllm = texts.add(gr.Textbox(interactive=False, buttons=["copy"], elem_id="export-vllm-command"),
                     label="export_vllm_command")
    return ExportLayout(choice=choice, gguf_type=gguf_type, written=gr.State({}), paths=paths, files=files,
                        ollama=ollama, vllm=vllm, notes=notes, refresh=refresh, shard_size=shard_size,
                        package=package, merged=merged, gguf=gguf, modelfile=modelfile, vllm_button=vllm_button,
                        report=report)
