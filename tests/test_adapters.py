"""Adapter choices: a run's final adapter and its checkpoints, named, listed and located."""
from __future__ import annotations

import pytest

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.studio import Studio
from engine.training import adapters
from tests.conftest import FakeJob


def _run(folder, final: bool = True, steps: tuple[int, ...] = (10, 20)):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    if final:
        (folder / "adapter").mkdir()
        (folder / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    for step in steps:
        checkpoint = folder / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "adapter_config.json").write_text("{}", encoding="utf-8")
        (checkpoint / "trainer_state.json").write_text("{}", encoding="utf-8")  # written last: the save is complete
    return folder


def test_final_adapter_first_then_checkpoints_newest_first(tmp_path):
    run = _run(tmp_path / "r1", steps=(5, 20, 10))
    (run / "checkpoints" / "checkpoint-30").mkdir()  # no adapter saved there: not offered
    choices = adapters.choices_for("r1", run)
    assert [(c.value, c.step) for c in choices] == [
        ("r1", None), ("r1@checkpoint-20", 20), ("r1@checkpoint-10", 10), ("r1@checkpoint-5", 5)]


def test_checkpoint_folders_are_the_numbered_ones_by_step(tmp_path):
    run = _run(tmp_path / "r0", steps=(100, 9, 20))
    (run / "checkpoints" / "checkpoint-30").mkdir()  # no adapter: still a checkpoint folder
    for odd in ("checkpoint-tmp", "checkpoint-", "checkpoint-1x"):
        (run / "checkpoints" / odd).mkdir()
    (run / "checkpoints" / "checkpoint-40").write_text("a file, not a folder", encoding="utf-8")
    assert [p.name for p in adapters.checkpoint_folders(run)] == [
        "checkpoint-9", "checkpoint-20", "checkpoint-30", "checkpoint-100"]
    with_adapter = adapters.checkpoints_with_adapter(run)
    assert [p.name for p in with_adapter] == ["checkpoint-9", "checkpoint-20", "checkpoint-100"]
    assert adapters.checkpoint_folders(tmp_path / "no-such-run") == []


def test_a_stopped_run_without_final_adapter_still_offers_its_checkpoints(tmp_path):
    run = _run(tmp_path / "r2", final=False, steps=(4,))
    assert [c.value for c in adapters.choices_for("r2", run)] == ["r2@checkpoint-4"]


def test_split_choice_and_locate(tmp_path):
    run = _run(tmp_path / "r3")
    assert adapters.split_choice("r3@checkpoint-10") == ("r3", "checkpoint-10")
    assert adapters.split_choice("me@host/run") == ("me@host/run", None)  # an @ that names no checkpoint
    assert adapters.locate(run) == (run, run / "adapter")
    checkpoint = run / "checkpoints" / "checkpoint-10"
    assert adapters.locate(checkpoint) == (run, checkpoint)


def test_locate_refuses_a_folder_without_adapter_naming_it(tmp_path):
    run = _run(tmp_path / "r4", final=False, steps=())
    with pytest.raises(EngineError) as caught:
        adapters.locate(run)
    assert caught.value.code == "run_not_found" and caught.value.params["path"] == str(run)
    with pytest.raises(EngineError):
        adapters.locate(run / "checkpoints" / "checkpoint-99")


def test_studio_lists_and_resolves_choices_of_real_runs(tmp_path, english_dataset):
    studio = Studio(tmp_path / "runs", job_factory=lambda *args: FakeJob(*args, steps=3), data_root=tmp_path / "data")
    run_id = studio.start(TrainConfig(dataset_path=str(english_dataset)))
    studio.runner.wait()
    values = [c.value for c in studio.adapter_choices()]
    assert values == [run_id, f"{run_id}@checkpoint-3", f"{run_id}@checkpoint-2", f"{run_id}@checkpoint-1"]
    run_dir = studio.runner.run_dir(run_id)
    assert studio.adapter_path(run_id) == run_dir
    assert studio.adapter_path(f"{run_id}@checkpoint-2") == run_dir / "checkpoints" / "checkpoint-2"


def test_a_checkpoint_cut_short_is_offered_nowhere(tmp_path):
    """A save killed before the trainer wrote trainer_state.json: not offered for chat or studies, not resumed
    from; the complete checkpoint before it is."""
    run = _run(tmp_path / "r5", final=False, steps=(2, 4))
    (run / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    assert [p.name for p in adapters.checkpoint_folders(run)] == ["checkpoint-2", "checkpoint-4"]
    assert [p.name for p in adapters.complete_checkpoints(run)] == ["checkpoint-2"]
    assert [c.value for c in adapters.choices_for("r5", run)] == ["r5@checkpoint-2"]
    assert adapters.latest_checkpoint(run) == run / "checkpoints" / "checkpoint-2"
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").unlink()
    assert adapters.latest_checkpoint(run) is None and adapters.choices_for("r5", run) == []


def test_studio_leaves_out_a_checkpoint_cut_short(tmp_path, english_dataset):
    studio = Studio(tmp_path / "runs", job_factory=lambda *args: FakeJob(*args, steps=3), data_root=tmp_path / "data")
    run_id = studio.start(TrainConfig(dataset_path=str(english_dataset)))
    studio.runner.wait()
    run_dir = studio.runner.run_dir(run_id)
    (run_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").unlink()
    assert [c.value for c in studio.adapter_choices()] == [run_id, f"{run_id}@checkpoint-2", f"{run_id}@checkpoint-1"]
    assert adapters.latest_checkpoint(run_dir) == run_dir / "checkpoints" / "checkpoint-2"
