"""The studio's export verbs (`engine/export/desk.py`): which adapter an export takes, refusals while the device is
busy, the facts a report gathers; and, on a real trained run, the package, GGUF + Modelfile and report written."""
from __future__ import annotations

import html
import json
import zipfile
from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.export import desk
from engine.export.source import ExportSource
from engine.studio import Studio
from engine.study.sides import study_sides
from engine.system.workspace import Workspace
from tests.conftest import sample_rows


def fake_run(runs: Path, run_id: str = "r1", checkpoint: bool = True, **settings) -> Path:
    """A run folder with an adapter's config (no weights) and a complete checkpoint: enough to locate and advise."""
    run_dir = runs / run_id
    dataset = runs.parent / "rows.jsonl"
    dataset.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in sample_rows()[:5]),
                       encoding="utf-8")
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(TrainConfig().replace(dataset_path=str(dataset), **settings).to_yaml(),
                                         encoding="utf-8")
    folders = [run_dir / "adapter"] + ([run_dir / "checkpoints" / "checkpoint-2"] if checkpoint else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_model.safetensors").write_bytes(b"")
        (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": "x"}))
    if checkpoint:
        (run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (run_dir / "events.jsonl").write_text("", encoding="utf-8")
    return run_dir


def test_a_choice_names_the_final_adapter_or_a_checkpoint(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    assert [c.value for c in studio.export_choices()] == ["r1", "r1@checkpoint-2"]
    final, checkpoint = studio.export_source("r1"), studio.export_source("r1@checkpoint-2")
    assert final.adapter_dir == run_dir / "adapter" and final.export_dir == run_dir / "export" / "adapter"
    assert checkpoint.adapter_dir == run_dir / "checkpoints" / "checkpoint-2"
    assert checkpoint.export_dir == run_dir / "export" / "checkpoint-2"
    assert studio.export_source(final) is final
    with pytest.raises(EngineError) as missing:
        studio.export_source("r9")
    assert missing.value.code == "run_not_found"


def test_a_folder_named_by_path_must_lie_in_the_workspace(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data", workspace=Workspace.of(tmp_path / "data"))
    with pytest.raises(EngineError) as outside:
        studio.export_source_at(run_dir)
    assert outside.value.code == "path_outside_workspace"
    anywhere = Studio(tmp_path / "runs", data_root=tmp_path / "data")  # the command line names its own folders
    assert anywhere.export_source_at(run_dir / "checkpoints" / "checkpoint-2").adapter_name == "checkpoint-2"


def test_exports_that_load_a_model_are_refused_while_the_device_is_busy(tmp_path):
    fake_run(tmp_path / "runs")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    assert studio.chat.lock.acquire("chat")  # the chat generates (or a run's worker holds the device)
    try:
        for export in (lambda: studio.export_merged("r1"), lambda: studio.export_gguf("r1", "f16")):
            with pytest.raises(EngineError) as busy:
                export()
            assert busy.value.code == "busy_generating"
        assert not (tmp_path / "runs" / "r1" / "export").exists()
    finally:
        studio.chat.lock.release()
    assert studio.chat.lock.acquire("chat")  # a refusal never keeps the lock
    studio.chat.lock.release()


def test_a_modelfile_for_an_unavailable_type_is_refused_before_any_file_is_taken(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    stale = run_dir / "export" / "adapter" / "r1-q9_9.gguf"  # left by hand, of a type the studio cannot write
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"GGUF")
    with pytest.raises(EngineError) as refused:
        studio.export_modelfile("r1", "Q9_9")
    assert refused.value.code == "gguf_type_unavailable" and "q8_0" in refused.value.params["available"]
    assert not (stale.parent / "Modelfile").exists()


def test_the_vllm_line_names_the_adapter_folder_and_rank(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    advice = Studio(tmp_path / "runs", data_root=tmp_path / "data").vllm_advice("r1")
    assert advice.command.startswith("vllm serve ") and "--enable-lora" in advice.command
    assert str(run_dir / "adapter") in advice.command and "--max-lora-rank 8" in advice.command


def test_the_report_takes_the_newest_study_with_votes_of_this_adapter(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "studies.db").write_bytes(b"")
    votes = {"n_votes": 6, "by_rater": {"ann": {}, "bo": {}}, "agreement": {"fleiss": 0.4},
             "overall": {"win": {"count": 4, "rate": 4 / 6, "ci": (0.3, 0.9)}, "tie": {"count": 1},
                         "loss": {"count": 1}}}
    studies = [{"id": 3, "name": "other run", "run_dir": str(tmp_path / "elsewhere"), "votes": 9, "questions": 9},
               {"id": 2, "name": "no votes yet", "run_dir": str(run_dir), "votes": 0, "questions": 4},
               {"id": 1, "name": "greetings", "run_dir": str(run_dir), "votes": 6, "questions": 3}]
    for study in studies:
        study["sides"] = study_sides(study["run_dir"], None)
    studio.list_studies = lambda: studies
    studio.study_statistics = lambda study_id: votes if study_id == 1 else pytest.fail(f"study {study_id} read")
    summary, stats = studio._latest_study(studio.export_source("r1"))
    assert (summary.name, summary.n_votes, summary.n_raters, summary.n_items) == ("greetings", 6, 2, 3)
    assert (summary.win_rate, summary.low, summary.high, summary.ties, summary.base_wins) == (4 / 6, 0.3, 0.9, 1, 1)
    assert stats["agreement"] == {"fleiss": 0.4}
    assert studio._latest_study(studio.export_source("r1@checkpoint-2")) == (None, None)
    assert (summary.baseline_run, summary.baseline_step) == (None, None)  # judged against the base model


def test_a_dpo_adapters_study_against_its_sft_run_names_that_baseline(tmp_path):
    run_dir = fake_run(tmp_path / "runs", run_id="dpo")
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "studies.db").write_bytes(b"")
    sft_checkpoint = tmp_path / "runs" / "sft" / "checkpoints" / "checkpoint-30"
    votes = {"n_votes": 2, "by_rater": {"ann": {}}, "agreement": {},
             "overall": {"win": {"count": 1, "rate": 0.5, "ci": (0.1, 0.9)}, "tie": {"count": 0},
                         "loss": {"count": 1}}}
    studio.list_studies = lambda: [{"id": 1, "name": "sft ↔ dpo", "run_dir": str(run_dir), "votes": 2, "questions": 2,
                                    "sides": study_sides(run_dir, sft_checkpoint)}]
    studio.study_statistics = lambda study_id: votes
    summary, _ = studio._latest_study(studio.export_source("dpo"))
    assert (summary.baseline_run, summary.baseline_step, summary.base_wins) == ("sft", 30, 1)


def test_the_estimate_counts_the_epochs_max_steps_makes():
    config = TrainConfig().replace(per_device_train_batch_size=2, gradient_accumulation_steps=2, eval_split=0.0)
    assert desk._epochs_run(config.replace(max_steps=-1, num_train_epochs=3), 40) == 3
    assert desk._epochs_run(config.replace(max_steps=5), 40) == 0.5  # 40 rows / 4 per step = 10 steps an epoch


def test_sample_prompts_fall_back_to_the_dataset_when_nothing_was_held_out(tmp_path):
    run_dir = fake_run(tmp_path / "runs", eval_split=0.0)
    prompts = desk._sample_prompts(ExportSource.of(run_dir))
    assert len(prompts) == desk.SAMPLE_PROMPTS
    assert prompts[0].startswith(sample_rows()[0]["instruction"])


@pytest.mark.slow
def test_a_trained_run_is_packaged_turned_into_gguf_with_a_modelfile_and_reported(run_copy):
    studio = Studio(run_copy.parent, data_root=run_copy.parent.parent / "data")
    steps: list[str] = []
    package = studio.export_adapter_package(run_copy.name, lambda code, _fraction: steps.append(code))
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert package == run_copy / "export" / "adapter" / f"{run_copy.name}-adapter.zip"
    assert any(name.endswith("adapter_model.safetensors") for name in names)
    assert any(name.endswith("README.md") for name in names) and any(name.endswith("loss.png") for name in names)
    modelfile, command = studio.export_modelfile(run_copy.name, "f16", lambda code, _f: steps.append(code))
    gguf = run_copy / "export" / "adapter" / f"{run_copy.name}-f16.gguf"
    assert gguf.is_file() and modelfile == gguf.parent / "Modelfile"
    assert f"FROM ./{gguf.name}" in modelfile.read_text(encoding="utf-8")
    assert command.startswith("ollama create ") and str(modelfile) in command
    report = studio.write_report(run_copy.name, "zh", lambda code, _f: steps.append(code))
    text = report.read_text(encoding="utf-8")
    prompt = desk._sample_prompts(ExportSource.of(run_copy))[0]  # the run held nothing out: its first rows
    assert report == run_copy / "report.html" and any(html.escape(prompt, quote=q) in text for q in (True, False))
    assert "engine.export_step_samples" in steps and steps[-1] == "engine.export_step_done"
