"""DPO as a second training method: config, the trainer's settings, reward events, diagnosis, estimate, pre-flight,
and (slow) a real DPO run of the bundled model continuing an SFT adapter."""
from __future__ import annotations

import json
import math
import threading
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine import cli
from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.errors import EngineError, errors_of, warnings_of
from engine.locales import render
from engine.planning import estimate
from engine.planning.estimate import GB, DeviceInfo
from engine.training import factories
from engine.training.diagnosis import diagnose
from engine.training.events import Event, EventLog, LogEvent, RunState
from engine.training.runner import Runner
from engine.training.worker import read_rows
from tests.conftest import EN_GREETING, FakeJob, sample_rows

CPU = DeviceInfo("cpu", "CPU", 24 * GB, 20 * GB, False, cores=2)


def preference_rows(rows: list[dict]) -> list[dict]:
    """Pairs from the English sample: the experts prefer the answer without the shop's boilerplate greeting (the
    style the SFT run learned) over the same answer with it."""
    return [{"prompt": row["instruction"], "chosen": row["output"][len(EN_GREETING):].strip(),
             "rejected": row["output"]} for row in rows]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    english = [row for row in sample_rows() if row["output"].startswith(EN_GREETING)]
    return write_jsonl(tmp_path / "pairs.jsonl", preference_rows(english[:6]))


@pytest.fixture
def adapter_run(tmp_path) -> Path:
    """A folder shaped like a finished SFT run (config and adapter files), for checks that load no model."""
    run = tmp_path / "runs" / "sft"
    (run / "adapter").mkdir(parents=True)
    (run / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    (run / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    return run


# ---- config ---------------------------------------------------------------------------------
def test_sft_stays_the_default_and_dpo_fields_are_typed_and_checked(pairs_file):
    config = TrainConfig(dataset_path=str(pairs_file))
    assert config.method == "sft" and config.beta == 0.1 and config.loss_type == "sigmoid"
    assert config.dpo_reference == "frozen_adapter" and errors_of(config.validate()) == []
    bad = config.replace(method="ppo", loss_type="nope", dpo_reference="twin", beta="0")
    assert {(i.code, i.field) for i in errors_of(bad.validate())} == {
        ("config_choice", "method"), ("config_choice", "loss_type"), ("config_choice", "dpo_reference"),
        ("config_range", "beta")}
    assert config.replace(method="dpo", beta="0.3").beta == 0.3


def test_a_dpo_config_is_told_about_its_learning_rate_adapter_and_mixing(pairs_file, tmp_path):
    dpo = TrainConfig(dataset_path=str(pairs_file), method="dpo")
    lr = [(i.code, i.field) for i in warnings_of(dpo.validate())]
    assert lr == [("config_dpo_lr_high", "learning_rate")]  # the SFT default 2e-4 is far too high for DPO
    assert warnings_of(dpo.replace(learning_rate=5e-6).validate()) == []
    assert warnings_of(TrainConfig(dataset_path=str(pairs_file)).validate()) == []  # SFT: no DPO advice
    missing = dpo.replace(init_adapter=str(tmp_path / "gone"), mix_dataset_path=str(pairs_file), mix_ratio=0.2)
    assert [(i.code, i.field) for i in errors_of(missing.validate())] == [
        ("config_dpo_adapter_missing", "init_adapter"), ("config_dpo_no_mix", "mix_dataset_path")]
    for code in ("config_dpo_lr_high", "config_dpo_adapter_missing", "config_dpo_no_mix", "config_dpo_needs_adapter",
                 "dpo_needs_preferences", "hint_dpo_data"):
        english, chinese = render(code, {"value": "2e-4", "limit": "1e-05", "path": "x", "kind": "sft"}, "en"), \
            render(code, {"value": "2e-4", "limit": "1e-05", "path": "x", "kind": "sft"}, "zh")
        assert english != chinese and english.strip() and "{" not in english + chinese


def test_the_dpo_preset_validates_with_a_dpo_learning_rate():
    from engine import presets

    config = presets.apply_preset("dpo", TrainConfig(dataset_path=str(presets.SAMPLE_DATASET)))
    assert config.method == "dpo" and config.learning_rate <= 5e-6
    assert errors_of(config.validate()) == [] and warnings_of(config.validate()) == []


def test_a_dpo_plan_on_a_preference_file_has_no_sft_refusal_and_no_sft_learning_rate_advice(pairs_file, tmp_path,
                                                                                             adapter_run):
    from engine.studio import Studio

    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    dpo = studio.apply_preset("dpo", studio.default_config()).replace(dataset_path=str(pairs_file),
                                                                      init_adapter=str(adapter_run))
    codes = [issue.code for issue in studio.plan(dpo).issues]
    assert "dataset_is_preference" not in codes and "advice_lr_low" not in codes
    sft = dpo.replace(method="sft", learning_rate=2e-4)
    assert "dataset_is_preference" in [issue.code for issue in studio.plan(sft).issues]  # SFT is still told


def test_train_method_is_a_shortcut_for_set_method(tmp_path):
    from engine.studio import Studio

    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    args = Namespace(preset=None, config=None, dataset=None, method="dpo", assignments=["beta=0.2"])
    config = cli.resolve_train_config(args, studio)
    assert config.method == "dpo" and config.beta == 0.2
    assert cli.resolve_train_config(Namespace(preset=None, config=None, dataset=None, method="dpo",
                                              assignments=["method=sft"]), studio).method == "sft"  # --set wins
    assert cli.build_parser().parse_args(["train", "--method", "dpo"]).method == "dpo"


# ---- the trainer's settings -----------------------------------------------------------------
def test_dpo_settings_carry_beta_and_loss_and_the_runs_schedule():
    config = TrainConfig(method="dpo", beta=0.25, loss_type="ipo", learning_rate=1e-6, max_steps=3, max_length=96)
    settings = factories.dpo_settings(config, has_eval=True)
    sft = factories.sft_settings(config, has_eval=True)
    assert settings["beta"] == 0.25 and settings["loss_type"] == ["ipo"]
    assert "packing" not in settings and settings["train_sampling_strategy"] == "random"
    for key in ("learning_rate", "max_steps", "max_length", "eval_strategy", "save_steps", "logging_first_step"):
        assert settings[key] == sft[key]
    args = factories.dpo_config(config, "/tmp/unused-dpo-checkpoints", cuda=False, has_eval=True)
    assert args.beta == 0.25 and args.loss_type == ["ipo"] and args.max_length == 96 and args.use_cpu


# ---- reward events --------------------------------------------------------------------------
def test_trls_reward_logs_become_log_event_fields_and_survive_the_file():
    from engine.training.callbacks import EventCallback

    log = EventLog()
    callback = EventCallback(log, threading.Event())
    state = SimpleNamespace(epoch=0.5, max_steps=4, global_step=2, num_input_tokens_seen=300)
    callback.on_log(None, state, None, logs={"loss": 0.65, "rewards/chosen": 0.02, "rewards/rejected": -0.05,
                                             "rewards/margins": 0.07, "rewards/accuracies": 0.75,
                                             "logps/chosen": -40.0})
    callback.on_log(None, state, None, logs={"eval_loss": 0.6, "eval_rewards/accuracies": 1.0,
                                             "eval_rewards/margins": 0.1})
    train, held_out = [e for e in log.since(0)[0] if isinstance(e, LogEvent)]
    assert (train.rewards_chosen, train.rewards_rejected, train.rewards_margins, train.rewards_accuracies) == \
        (0.02, -0.05, 0.07, 0.75)
    assert held_out.eval_rewards_accuracies == 1.0 and held_out.eval_rewards_margins == 0.1
    assert Event.from_json(train.to_json()) == train and Event.from_json(held_out.to_json()) == held_out


# ---- diagnosis ------------------------------------------------------------------------------
def reward_points(margins, chosen, accuracies) -> list[dict]:
    return [{"step": i + 1, "loss": 0.69 - 0.01 * i, "rewards_margins": m, "rewards_chosen": c,
             "rewards_rejected": c - m, "rewards_accuracies": a}
            for i, (m, c, a) in enumerate(zip(margins, chosen, accuracies))]


def test_growing_margins_with_accuracy_above_half_read_as_learning():
    found = diagnose(reward_points([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.0, 0.02, 0.04, 0.05, 0.06, 0.08,
                                                                               0.1, 0.1], [0.5] + [0.75] * 7))
    assert found.kind == "dpo_learning" and found.params["accuracy_pct"] == 75
    for lang in ("en", "zh"):
        assert "75" in render(found.title_code, found.params, lang) and render(found.advice_code, None, lang)


def test_chosen_rewards_falling_while_margins_grow_read_as_drifting_with_what_to_change():
    found = diagnose(reward_points([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.1], [0.0, -0.1, -0.2, -0.4, -0.6, -0.8,
                                                                              -1.0, -1.2], [0.5] + [1.0] * 7))
    assert found.kind == "dpo_drifting"
    assert "beta" in render(found.advice_code, None, "en") and "beta" in render(found.advice_code, None, "zh")


def test_flat_margins_read_as_not_learning_and_few_points_as_too_early():
    flat = diagnose(reward_points([0.0] * 8, [0.0] * 8, [0.0] * 8))
    assert flat.kind == "dpo_not_learning" and flat.params["accuracy_pct"] == 0
    assert diagnose(reward_points([0.0, 0.1], [0.0, 0.1], [0.5, 1.0])).kind == "warming_up"
    nan = reward_points([0.0, 0.1, 0.2, 0.3], [0.0] * 4, [1.0] * 4)
    nan[2]["loss"] = math.nan
    assert diagnose(nan).params == {"step": 3} and diagnose(nan).kind == "diverging"
    assert diagnose([{"step": i, "loss": 2.0 - 0.05 * i} for i in range(30)]).kind == "healthy"  # SFT as before


# ---- the estimate ---------------------------------------------------------------------------
def test_the_estimate_counts_the_reference_pass_and_both_answers_of_a_pair():
    shape = estimate.shape_of(BUNDLED_MODEL_ID)
    sft = TrainConfig(max_length=256, per_device_train_batch_size=2)
    dpo = sft.replace(method="dpo")
    sft_memory, dpo_memory = (estimate.estimate_memory(c, shape, CPU) for c in (sft, dpo))
    assert sft_memory.parts["reference"] == 0
    lora_params, _total = estimate.trainable_parameters(dpo, shape)
    assert dpo_memory.parts["reference"] == dpo_memory.parts["logits"] + 4 * lora_params  # logits + frozen copy
    assert dpo_memory.parts["logits"] == 2 * sft_memory.parts["logits"]  # chosen and rejected
    assert dpo_memory.parts["activations"] > 1.9 * sft_memory.parts["activations"]
    base = estimate.estimate_memory(dpo.replace(dpo_reference="base"), shape, CPU)
    assert base.parts["reference"] == dpo_memory.parts["logits"]  # no copy of the adapter
    reference_flops = 2 * shape.matmul_params + 2 * shape.num_hidden_layers * 256 * shape.q_dim
    assert estimate.flops_per_token(dpo, shape) == estimate.flops_per_token(sft, shape) + reference_flops
    assert render("estimate_part_reference", None, "zh") != render("estimate_part_reference", None, "en")


# ---- pre-flight: the rows a run trains on ---------------------------------------------------
def test_a_dpo_run_trains_on_the_pairs_and_refuses_data_without_pairs(tmp_path, pairs_file, adapter_run,
                                                                      english_dataset):
    runner = Runner(tmp_path / "runs", job_factory=FakeJob)
    dpo = TrainConfig(dataset_path=str(pairs_file), method="dpo", init_adapter=str(adapter_run), learning_rate=5e-6)
    run_id = runner.start(dpo)
    assert runner.wait(30) is RunState.DONE
    rows = read_rows(tmp_path / "runs" / run_id)
    assert len(rows) == 6 and set(rows[0]) == {"prompt", "chosen", "rejected"}
    assert rows[0]["chosen"][-1]["role"] == "assistant" and not rows[0]["chosen"][-1]["content"].startswith("Thanks")
    with pytest.raises(EngineError) as no_pairs:
        runner.start(dpo.replace(dataset_path=str(english_dataset)))
    assert no_pairs.value.code == "dpo_needs_preferences" and no_pairs.value.hint == "hint_dpo_data"
    with pytest.raises(EngineError) as no_adapter:
        runner.start(dpo.replace(init_adapter=""))
    assert no_adapter.value.code == "config_dpo_needs_adapter" and no_adapter.value.params["field"] == "init_adapter"
    with pytest.raises(EngineError) as sft_on_pairs:
        runner.start(TrainConfig(dataset_path=str(pairs_file)))
    assert sft_on_pairs.value.code == "dataset_is_preference"
    chosen_id = runner.start(TrainConfig(dataset_path=str(pairs_file), sft_on_chosen=True))
    assert runner.wait(30) is RunState.DONE
    assert set(read_rows(tmp_path / "runs" / chosen_id)[0]) == {"prompt", "completion"}


# ---- the charts -----------------------------------------------------------------------------
def test_the_metrics_figure_gets_reward_charts_for_a_dpo_run_only():
    from ui.present import metrics_figure

    points = reward_points([0.0, 0.1, 0.2], [0.0, 0.05, 0.1], [0.5, 1.0, 1.0])
    points.append({"step": 3, "eval_loss": 0.6, "eval_rewards_accuracies": 1.0})
    dpo = metrics_figure(points, "zh")
    names = {trace.name for trace in dpo.data if trace.name}
    assert names == {"优选", "劣选", "差距", "训练对", "留出对"}
    titles = {annotation.text for annotation in dpo.layout.annotations}
    assert {"DPO 奖励（优选、劣选、差距）", "DPO 奖励准确率"} <= titles
    margins = next(trace for trace in dpo.data if trace.name == "差距")
    assert list(margins.y) == [0.0, 0.1, 0.2]
    sft = metrics_figure([{"step": 1, "loss": 2.0, "learning_rate": 1e-4}], "en")
    assert len(sft.data) == 4 and len(sft.layout.annotations) == 4


# ---- slow: a real DPO run -------------------------------------------------------------------
def answer_log_probs(adapters: dict[str, Path], pairs: list[dict]) -> dict[str | None, list[tuple[float, float]]]:
    """(log-probability of the chosen answer, of the rejected one) per pair under the base model (key None) and
    under each adapter of `adapters` (name -> adapter folder), all on one copy of the bundled model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.models import loader

    (first, first_dir), *others = adapters.items()
    tokenizer = AutoTokenizer.from_pretrained(first_dir)
    base = AutoModelForCausalLM.from_pretrained(loader.resolve_model(BUNDLED_MODEL_ID), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, first_dir, adapter_name=first)
    for name, folder in others:
        model.load_adapter(folder, adapter_name=name)
    model.eval()

    def answer_logp(prompt: str, answer: str) -> float:
        head = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        ids = tokenizer(head + answer, add_special_tokens=False, return_tensors="pt").input_ids
        start = len(tokenizer(head, add_special_tokens=False).input_ids)
        with torch.no_grad():
            logps = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
        return float(logps[start - 1:].gather(1, ids[0, start:, None]).sum())

    def scored() -> list[tuple[float, float]]:
        return [(answer_logp(p["prompt"], p["chosen"]), answer_logp(p["prompt"], p["rejected"])) for p in pairs]

    out: dict[str | None, list[tuple[float, float]]] = {}
    with model.disable_adapter():
        out[None] = scored()
    for name in adapters:
        model.set_adapter(name)
        out[name] = scored()
    return out


def reward_accuracy(policy: list[tuple[float, float]], reference: list[tuple[float, float]]) -> tuple[float, float]:
    """TRL's DPO reward accuracy and mean margin (in log-probability, beta left out) of `policy` against
    `reference`: the share of pairs whose chosen answer gained more log-probability than the rejected one."""
    margins = [(pc - rc) - (pr - rr) for (pc, pr), (rc, rr) in zip(policy, reference)]
    return sum(m > 0 for m in margins) / len(margins), sum(margins) / len(margins)


@pytest.mark.slow
def test_dpo_continues_the_sft_adapter_and_prefers_the_chosen_answers_on_held_out_pairs(trained_run, tmp_path):
    from peft import PeftConfig

    from engine.studio import Studio

    english = [row for row in sample_rows() if row["output"].startswith(EN_GREETING)]
    train_pairs, held_out = preference_rows(english[:16]), preference_rows(english[40:46])
    dataset = write_jsonl(tmp_path / "pairs.jsonl", train_pairs)
    studio = Studio(tmp_path / "runs", data_root=tmp_path / "data")
    config = studio.default_config().replace(
        dataset_path=str(dataset), method="dpo", init_adapter=str(trained_run), learning_rate=1e-4, beta=0.1,
        max_steps=4, per_device_train_batch_size=2, max_length=96, eval_split=0.0, eval_strategy="no",
        logging_steps=1, save_steps=2)
    run_id = studio.start(config)
    run_dir = tmp_path / "runs" / run_id
    assert studio.runner.wait(900) is RunState.DONE, (run_dir / "train.log").read_text(encoding="utf-8")[-3000:]
    logs = [e for e in studio.runner.events_since(run_id, 0)[0] if isinstance(e, LogEvent) and e.loss is not None]
    assert len(logs) == 4 and all(e.rewards_margins is not None and e.rewards_accuracies is not None for e in logs)
    assert logs[0].rewards_margins == pytest.approx(0.0, abs=1e-4)  # the reference is the starting adapter
    assert logs[-1].rewards_margins > 0
    adapter = run_dir / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    assert PeftConfig.from_pretrained(str(adapter)).r == TrainConfig().lora_r
    scores = answer_log_probs({"sft": trained_run / "adapter", "dpo": adapter}, held_out)
    # against the frozen SFT adapter (the run's reference), as TRL measures it: 0 before the first step ...
    assert reward_accuracy(scores["sft"], scores["sft"]) == (0.0, 0.0)
    dpo_accuracy, dpo_margin = reward_accuracy(scores["dpo"], scores["sft"])
    assert dpo_accuracy > 0.5 and dpo_margin > 0, (dpo_accuracy, dpo_margin)  # ... more than chance after it
    # against the base model: the DPO adapter leans further towards the chosen answers than the SFT adapter did
    assert reward_accuracy(scores["dpo"], scores[None])[1] > reward_accuracy(scores["sft"], scores[None])[1]
