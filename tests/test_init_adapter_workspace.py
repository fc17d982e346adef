"""The adapter a run continues (`init_adapter`, filled by "Improve with these votes") is a path a web form names:
a confined studio takes it only inside its folders (the runs folder), the command line takes any folder."""
from __future__ import annotations

from engine import Studio, TrainConfig, render_error
from tests.conftest import FakeJob
from tests.test_workspace import _confined, _dataset, _refused


def test_a_confined_studio_refuses_an_adapter_outside_its_folders(tmp_path):
    inside = _dataset(tmp_path / "data" / "faq.jsonl")
    outside = tmp_path / "private" / "adapter"
    outside.mkdir(parents=True)
    studio = _confined(tmp_path)
    for path in (outside, tmp_path / "runs" / ".." / "private" / "adapter"):
        error = _refused(lambda path=path: studio.start(TrainConfig(dataset_path=str(inside),
                                                                    init_adapter=str(path))), "init_adapter")
        assert "init_adapter" in render_error(error, "en") and "init_adapter" in render_error(error, "zh")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing started


def test_an_adapter_in_the_runs_folder_is_taken_and_the_command_line_is_not_confined(tmp_path):
    inside = _dataset(tmp_path / "data" / "faq.jsonl")
    run_adapter = tmp_path / "runs" / "earlier" / "adapter"
    run_adapter.mkdir(parents=True)
    confined = _confined(tmp_path)
    confined._check_paths(TrainConfig(dataset_path=str(inside), init_adapter=str(run_adapter)))  # no refusal
    elsewhere = tmp_path / "private" / "adapter"
    elsewhere.mkdir(parents=True)
    cli = Studio(tmp_path / "cli-runs", job_factory=FakeJob)
    cli._check_paths(TrainConfig(dataset_path=str(inside), init_adapter=str(elsewhere)))  # the user's own folder
