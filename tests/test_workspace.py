"""Paths a web request names stay inside the studio's folders: `../`, absolute paths and symlinks out are refused,
in words naming the field and the folders, in every path field; the command line is not confined."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client

from engine import EngineError, GenParams, Studio, TrainConfig, Workspace, render_error
from tests.conftest import FakeJob, sample_rows

ROWS = sample_rows()[:8]


def _dataset(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    return path


@pytest.fixture
def folders(tmp_path):
    """(the studio's data folder with a dataset, a dataset outside it, a symlink inside pointing out)."""
    inside = _dataset(tmp_path / "data" / "faq.jsonl")
    outside = _dataset(tmp_path / "private" / "secret.jsonl")
    link = tmp_path / "data" / "link.jsonl"
    link.symlink_to(outside)
    return inside, outside, link


def _escapes(tmp_path: Path, outside: Path, link: Path) -> list[str]:
    return [str(outside), str(tmp_path / "data" / ".." / "private" / "secret.jsonl"), str(link)]


def _confined(tmp_path) -> Studio:
    return Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data",
                  workspace=Workspace.of(tmp_path / "data", tmp_path / "runs"))


def _refused(call, field: str) -> EngineError:
    with pytest.raises(EngineError) as caught:
        call()
    assert caught.value.code == "path_outside_workspace" and caught.value.params["field"] == field
    return caught.value


def test_a_workspace_takes_its_folders_and_refuses_the_rest(tmp_path, folders):
    inside, outside, link = folders
    workspace = Workspace.of(tmp_path / "data")
    assert workspace.check(inside, "dataset_path") == inside and workspace.check("", "dataset_path") == ""
    for path in _escapes(tmp_path, outside, link):
        _refused(lambda path=path: workspace.check(path, "dataset_path"), "dataset_path")
    assert not Workspace().confined and Workspace().check(outside, "dataset_path") == outside  # the CLI


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_refusal_names_the_field_the_path_and_the_folders(tmp_path, folders, lang):
    error = _refused(lambda: Workspace.of(tmp_path / "data").check(folders[1], "dataset_path"), "dataset_path")
    words = render_error(error, lang)
    assert "dataset_path" in words and str(folders[1]) in words and str(tmp_path / "data") in words
    assert "--allow-dir" in words


def test_every_path_field_of_a_confined_studio_is_checked(tmp_path, folders):
    inside, outside, link = folders
    studio = _confined(tmp_path)
    for path in _escapes(tmp_path, outside, link):
        _refused(lambda path=path: studio.check_dataset(path), "dataset_path")
        _refused(lambda path=path: studio.inspect_dataset(path), "dataset_path")
        _refused(lambda path=path: studio.open_editor("s1", path), "dataset_path")
        _refused(lambda path=path: studio.exclude_rows_with_errors("s1", path, TrainConfig()), "dataset_path")
        _refused(lambda path=path: studio.plan(TrainConfig(dataset_path=path)), "dataset_path")
        _refused(lambda path=path: studio.start(TrainConfig(dataset_path=path)), "dataset_path")
        _refused(lambda path=path: studio.start(TrainConfig(dataset_path=str(inside), mix_dataset_path=path,
                                                            mix_ratio=0.5)), "mix_dataset_path")
        _refused(lambda path=path: studio.studies_questions(path), "questions")
        _refused(lambda path=path: studio.create_study("s", path, "run", GenParams()), "questions")
    for folder in (outside.parent, tmp_path / "data" / ".." / "private"):
        _refused(lambda folder=folder: studio.export_dataset("s1", folder), "export")
        _refused(lambda folder=folder: studio.export_study(1, "csv", folder / "votes.csv"), "export")
    questions = tmp_path / "data" / "questions.jsonl"
    questions.write_text('{"prompt": "Where is my parcel?"}\n', encoding="utf-8")
    assert studio.inspect_dataset(inside).usable and len(studio.studies_questions(questions)) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing started


def test_a_run_whose_config_names_an_outside_dataset_is_not_resumed_from_the_web(tmp_path, folders):
    _inside, outside, _link = folders
    run = tmp_path / "runs" / "old"
    (run / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-1" / "trainer_state.json").write_text("{}", encoding="utf-8")
    (run / "config.yaml").write_text(TrainConfig(dataset_path=str(outside)).to_yaml(), encoding="utf-8")
    _refused(lambda: _confined(tmp_path).resume("old"), "dataset_path")


def test_the_served_app_refuses_an_outside_dataset_in_words(serve, tmp_path, folders):
    inside, outside, _link = folders
    url, _app = serve(_confined(tmp_path))
    client = Client(url, verbose=False)
    with pytest.raises(Exception) as caught:
        client.predict("en", str(outside), api_name="/check_dataset")
    assert "outside the studio's folders" in str(caught.value) and str(tmp_path / "data") in str(caught.value)
    summary, *_rest = client.predict("en", str(inside), api_name="/check_dataset")
    assert "faq.jsonl" in summary


def test_the_web_studio_opens_data_runs_uploads_samples_and_allowed_folders(tmp_path, monkeypatch):
    import app
    from engine import SAMPLE_DATASET

    monkeypatch.chdir(tmp_path)
    studio = app.web_studio(str(tmp_path / "runs"), [str(tmp_path / "extra")])
    roots = set(studio.workspace.roots)
    assert {(tmp_path / "data").resolve(), (tmp_path / "runs").resolve(), (tmp_path / "extra").resolve(),
            SAMPLE_DATASET.parent.resolve()} <= roots and len(roots) == 5  # and Gradio's upload folder
    assert studio.inspect_dataset(SAMPLE_DATASET).usable  # the preselected sample opens
