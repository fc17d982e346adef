"""Training over several processes (`num_gpus` > 1, DDP through accelerate): the setting and its checks, the
launch command, the plan's global batch and the per-GPU estimate; and, slow, the bundled model trained by 2
CPU processes (gloo) through the real runner and worker, against 1 process at the same global batch."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.config import TrainConfig
from engine.planning import estimate
from engine.planning.plan_text import global_batch, plan_lines
from engine.presets import SAMPLE_DATASET
from engine.training import factories
from engine.training.events import EventLog, LogEvent, RunState, StatusEvent
from engine.training.launch import worker_command
from engine.training.runner import Runner
from engine.training.worker import SilentLog, process_rank, real_job_factory
from tests.conftest import EN_GREETING, sample_rows

COUNTER = "tests.test_multi_gpu:step_counting_job"


def config(**changes) -> TrainConfig:
    return TrainConfig(dataset_path=str(SAMPLE_DATASET)).replace(**changes)


def a_run_dir(tmp_path: Path, cfg: TrainConfig) -> Path:
    (tmp_path / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    return tmp_path


# ---- the setting ---------------------------------------------------------------------------------
def test_one_process_is_the_default_and_the_yaml_and_set_contract_carry_the_setting():
    assert TrainConfig().num_gpus == 1
    assert TrainConfig.from_dict({"num_gpus": "2"}).num_gpus == 2
    assert "num_gpus: 1" in TrainConfig().to_yaml()
    assert [i.code for i in config(num_gpus=0).validate()] == ["config_range"]


def test_more_processes_than_cuda_gpus_is_an_error_naming_the_count(monkeypatch):
    monkeypatch.setattr(estimate, "cuda_device_count", lambda: 2)
    assert config(num_gpus=2).validate() == []
    issue, = config(num_gpus=3).validate()
    assert (issue.severity, issue.code, issue.field, issue.params) == \
        ("error", "config_num_gpus_too_many", "num_gpus", {"value": 3, "present": 2})
    assert "2" in issue.to_dict("en")["message"] and "GPU" in issue.to_dict("zh")["message"]


def test_several_processes_without_cuda_share_the_cpu_with_a_warning(monkeypatch):
    monkeypatch.setattr(estimate, "cuda_device_count", lambda: 0)
    issue, = config(num_gpus=2).validate()
    assert (issue.severity, issue.code, issue.field) == ("warning", "config_num_gpus_on_cpu", "num_gpus")
    assert "CPU" in issue.to_dict("en")["message"] and "CPU" in issue.to_dict("zh")["message"]


# ---- the launch ----------------------------------------------------------------------------------
def test_one_process_runs_the_worker_module_itself(tmp_path):
    run_dir = a_run_dir(tmp_path, config())
    assert worker_command(run_dir, "ckpt", None) == \
        [sys.executable, "-m", "engine.training.worker", str(run_dir), "--resume", "ckpt"]


def test_several_processes_run_the_worker_through_accelerate_launch(tmp_path):
    run_dir = a_run_dir(tmp_path, config(num_gpus=2))
    command = worker_command(run_dir, None, "m:f")
    assert command[:7] == [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines"]
    port = int(command[command.index("--main_process_port") + 1])
    assert 0 < port < 65536
    assert command[-5:] == ["-m", "engine.training.worker", str(run_dir), "--job", "m:f"]


def test_ranks_other_than_0_write_no_events_and_a_quantized_model_goes_to_its_own_gpu(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert process_rank() == 0 and factories.local_rank() == 0
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert process_rank() == 3 and factories.local_rank() == 1
    assert SilentLog().append(StatusEvent(RunState.TRAINING)) is None
    kwargs = factories.model_kwargs(TrainConfig(load_in_4bit=True), cuda=True, bf16_supported=True)
    assert kwargs["device_map"] == {"": 1}


def test_several_processes_do_not_search_for_unused_parameters():
    assert factories.sft_settings(config(num_gpus=2), has_eval=False)["ddp_find_unused_parameters"] is False
    assert "ddp_find_unused_parameters" not in factories.sft_settings(config(), has_eval=False)


# ---- the plan and the estimate -------------------------------------------------------------------
def test_the_plan_shows_the_global_batch_of_several_gpus():
    cfg = config(num_gpus=2, per_device_train_batch_size=4, gradient_accumulation_steps=3)
    assert global_batch(cfg) == {"per_device": 4, "processes": 2, "accumulation": 3, "total": 24}
    plan = SimpleNamespace(config=cfg, errors=[], issues=[], dataset=None, trainable=None, memory=None, time=None)
    for lang in ("en", "zh"):
        line = plan_lines(plan, lang)[-1]
        assert "4" in line and "2" in line and "3" in line and "24" in line and "GPU" in line
    assert not any("24" in line for line in plan_lines(SimpleNamespace(**{**vars(plan), "config": config()}), "en"))


def test_memory_is_per_gpu_and_time_scales_with_the_gpus_on_cuda_only():
    shape = estimate.shape_of(TrainConfig().model_name_or_path)
    gpu = estimate.DeviceInfo("cuda", "NVIDIA GeForce RTX 4090", 24 * 2**30, 23 * 2**30, True, 8)
    cpu = estimate.DeviceInfo("cpu", "x86_64", 16 * 2**30, 8 * 2**30, False, 2)
    one, two = config(), config(num_gpus=2)
    assert estimate.estimate_memory(two, shape, gpu).parts == estimate.estimate_memory(one, shape, gpu).parts
    ratio = estimate.estimate_time(two, shape, 10_000, gpu).tokens_per_second / \
        estimate.estimate_time(one, shape, 10_000, gpu).tokens_per_second
    assert ratio == pytest.approx(2 * estimate.DDP_EFFICIENCY)
    assert estimate.estimate_time(two, shape, 10_000, cpu).tokens_per_second == \
        estimate.estimate_time(one, shape, 10_000, cpu).tokens_per_second


# ---- slow: 2 CPU processes through the real runner and worker ------------------------------------
class StepCounter:
    """A TrainerCallback (duck-typed) that writes every rank's steps to `steps-<rank>.txt` in the run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / f"steps-{process_rank()}.txt"

    def on_step_end(self, args, state, control, **kwargs):
        """Note this rank's step and how many processes train."""
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{state.global_step} {args.world_size} {args.parallel_mode.value}\n")


def step_counting_job(config, examples, run_dir, log, stop_requested):
    """The real SFTJob with a StepCounter: the worker's `--job` for the slow test."""
    from transformers import TrainerCallback

    job = real_job_factory(config, examples, run_dir, log, stop_requested)
    job.trainer.add_callback(type("Counter", (StepCounter, TrainerCallback), {})(run_dir))
    return job


def small_dataset(tmp_path: Path, rows: int = 16) -> Path:
    path = tmp_path / "english16.jsonl"
    chosen = [r for r in sample_rows() if r["output"].startswith(EN_GREETING)][:rows]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8")
    return path


def train(root: Path, cfg: TrainConfig) -> tuple[Path, list]:
    runner = Runner(root, worker_job=COUNTER)
    run_id = runner.start(cfg)
    assert runner.wait(600) is RunState.DONE, (root / run_id / "train.log").read_text(encoding="utf-8")[-3000:]
    run_dir = root / run_id
    return run_dir, EventLog.read(run_dir / "events.jsonl").since(0)[0]


@pytest.mark.slow
def test_two_cpu_processes_train_like_one_at_the_same_global_batch(tmp_path):
    """2 gloo ranks: both step, rank 0 alone writes the events (no duplicate seq or step), the adapter reloads
    in PEFT, and every step's loss matches 1 process with the same global batch (4 rows per update)."""
    base = TrainConfig(dataset_path=str(small_dataset(tmp_path)), num_train_epochs=1.0, max_length=64,
                       eval_split=0.0, eval_strategy="no", logging_steps=1, save_steps=1000, lora_dropout=0.0,
                       train_sampling_strategy="random", warmup_steps=0.0, lr_scheduler_type="constant")
    os.environ.pop("FAKE_JOB", None)
    two_dir, two = train(tmp_path / "two", base.replace(num_gpus=2, per_device_train_batch_size=2))
    one_dir, one = train(tmp_path / "one", base.replace(num_gpus=1, per_device_train_batch_size=4))

    ranks = {rank: (two_dir / f"steps-{rank}.txt").read_text(encoding="utf-8").split("\n")[:-1] for rank in (0, 1)}
    assert ranks[0] == ranks[1] == [f"{step} 2 distributed" for step in range(1, 5)]  # 16 rows / 4 per update
    assert (one_dir / "steps-0.txt").read_text(encoding="utf-8").split("\n")[:-1] == \
        [f"{step} 1 not_parallel" for step in range(1, 5)]

    seqs = [e.seq for e in two]
    assert seqs == list(range(len(two)))  # written once: no sequence number twice, none missing
    statuses = [e.state for e in two if isinstance(e, StatusEvent)]
    assert statuses == [RunState.LOADING, RunState.TRAINING, RunState.SAVING, RunState.DONE]
    logs = {name: [(e.step, e.loss, e.tokens_seen) for e in events if isinstance(e, LogEvent) and e.loss is not None]
            for name, events in (("two", two), ("one", one))}
    assert [step for step, _loss, _tokens in logs["two"]] == [1, 2, 3, 4]
    # accelerate splits each update's 4 rows between the ranks (2 + 2), so both runs see the same rows at every
    # step: the tokens counted (gathered from both ranks) match exactly, and the losses up to the float
    # summation order of the gradients' all-reduce (measured here: 1e-7 apart). 1e-3 leaves room for other
    # machines' kernels and is still far below what one update moves the loss (0.1 to 0.6 between steps here).
    for (_s2, loss_two, tokens_two), (_s1, loss_one, tokens_one) in zip(logs["two"], logs["one"], strict=True):
        assert tokens_two == tokens_one and loss_two == pytest.approx(loss_one, rel=1e-3)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import loader

    base_model = AutoModelForCausalLM.from_pretrained(loader.resolve_model(base.model_name_or_path))
    model = PeftModel.from_pretrained(base_model, str(two_dir / "adapter"))
    assert any("lora_A" in name for name, _p in model.named_parameters())


def test_the_form_offers_gpus_to_use_only_with_more_than_one_cuda_device(monkeypatch):
    from ui import forms

    monkeypatch.setattr(forms, "cuda_device_count", lambda: 0)
    assert "num_gpus" not in forms.form_fields()
    monkeypatch.setattr(forms, "cuda_device_count", lambda: 2)
    assert "num_gpus" in forms.form_fields()
