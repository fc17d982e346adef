"""Durable training artefacts: the final adapter appears whole or not at all, even when the save is killed."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.training import adapters

KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
from engine.training.adapters import replacing_folder

with replacing_folder(Path(sys.argv[1])) as staging:
    (staging / "adapter_config.json").write_text("{}", encoding="utf-8")
    (staging / "adapter_model.safetensors").write_bytes(b"half of the weights")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _old_adapter(run_dir: Path) -> Path:
    adapter = run_dir / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"old": true}', encoding="utf-8")
    return adapter


def _hidden(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith("."))


def test_a_new_folder_replaces_the_old_one_only_when_whole(tmp_path):
    adapter = _old_adapter(tmp_path / "run")
    with adapters.replacing_folder(adapter) as staging:
        assert staging.parent == adapter.parent and staging.name.startswith(".adapter.tmp-")
        (staging / "adapter_config.json").write_text('{"new": true}', encoding="utf-8")
        assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"old": true}'  # not yet
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_config.json"]
    assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"new": true}'
    assert _hidden(tmp_path / "run") == []  # neither the staging folder nor the old adapter is left
    (tmp_path / "any-new-folder").mkdir()
    assert adapter.stat().st_mode == (tmp_path / "any-new-folder").stat().st_mode  # not a private temporary folder


def test_a_failed_save_keeps_the_old_folder_and_leaves_nothing_else(tmp_path):
    adapter = _old_adapter(tmp_path / "run")
    with pytest.raises(OSError), adapters.replacing_folder(adapter) as staging:
        (staging / "adapter_config.json").write_text('{"new": true}', encoding="utf-8")
        raise OSError(28, "No space left on device")
    assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"old": true}'
    assert _hidden(tmp_path / "run") == []
    fresh = tmp_path / "fresh" / "adapter"
    with pytest.raises(OSError), adapters.replacing_folder(fresh):
        raise OSError(28, "No space left on device")
    assert not fresh.exists() and _hidden(fresh.parent) == []


def test_a_failed_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    adapter = _old_adapter(tmp_path / "run")
    real_rename = Path.rename

    def rename(self, target):
        if self.name.startswith(".adapter.tmp-"):
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError), adapters.replacing_folder(adapter) as staging:
        (staging / "adapter_config.json").write_text('{"new": true}', encoding="utf-8")
    assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"old": true}'
    assert _hidden(tmp_path / "run") == []


def test_a_killed_save_leaves_no_half_adapter_and_the_next_save_cleans_up(tmp_path):
    run_dir = tmp_path / "run"
    adapter = _old_adapter(run_dir)
    fresh = tmp_path / "fresh" / "adapter"
    for target in (adapter, fresh):
        done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], cwd=Path(__file__).parents[1],
                              capture_output=True, timeout=60)
        assert done.returncode == -signal.SIGKILL, done.stderr
        assert [name[:len(".adapter.tmp-")] for name in _hidden(target.parent)] == [".adapter.tmp-"]
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_config.json"]  # the old one, untouched
    assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"old": true}'
    assert not fresh.exists()  # a half adapter never takes the name
    with adapters.replacing_folder(adapter) as staging:
        (staging / "adapter_config.json").write_text('{"new": true}', encoding="utf-8")
    assert _hidden(run_dir) == []
    assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"new": true}'


class _Trainer:
    """Stands in for the SFTTrainer's saving: writes the adapter files, or fails half way when told to."""

    def __init__(self, should_save: bool = True, fail: bool = False) -> None:
        self.args = SimpleNamespace(should_save=should_save)
        self.fail, self.saved_to = fail, []

    def save_model(self, output_dir: str) -> None:
        self.saved_to.append(output_dir)
        if not self.args.should_save:
            return
        (Path(output_dir) / "adapter_config.json").write_text('{"new": true}', encoding="utf-8")
        if self.fail:
            raise OSError(28, "No space left on device")
        (Path(output_dir) / "adapter_model.safetensors").write_bytes(b"weights")


class _Tokenizer:
    def save_pretrained(self, output_dir: str) -> None:
        (Path(output_dir) / "tokenizer_config.json").write_text("{}", encoding="utf-8")


def _job(trainer: _Trainer):
    from engine.training.job import SFTJob

    job = SFTJob.__new__(SFTJob)  # the saving part only: no model is loaded
    job.trainer, job.tokenizer = trainer, _Tokenizer()
    return job


def test_the_job_saves_the_adapter_through_a_staging_folder(tmp_path):
    trainer = _Trainer()
    adapter = _old_adapter(tmp_path / "run")
    _job(trainer).save(adapter)
    [staging] = trainer.saved_to
    assert Path(staging).name.startswith(".adapter.tmp-") and Path(staging).parent == adapter.parent
    assert sorted(p.name for p in adapter.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"]
    assert _hidden(tmp_path / "run") == []


def test_a_job_whose_save_fails_leaves_the_older_adapter_or_none(tmp_path):
    adapter = _old_adapter(tmp_path / "run")
    with pytest.raises(OSError):
        _job(_Trainer(fail=True)).save(adapter)
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_config.json"]
    assert (adapter / "adapter_config.json").read_text(encoding="utf-8") == '{"old": true}'
    fresh = tmp_path / "fresh" / "adapter"
    with pytest.raises(OSError):
        _job(_Trainer(fail=True)).save(fresh)
    assert list(fresh.parent.iterdir()) == []


def test_another_rank_of_a_multi_gpu_run_joins_the_save_and_writes_nothing(tmp_path):
    trainer = _Trainer(should_save=False)
    adapter = tmp_path / "run" / "adapter"
    _job(trainer).save(adapter)
    assert trainer.saved_to == [str(adapter)]
    assert not (tmp_path / "run").exists()
