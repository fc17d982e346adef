"""The memory and time estimate against published figures and PEFT's own parameter count."""
from __future__ import annotations

import pytest

from engine import estimate
from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.estimate import GB, DeviceInfo

CARD_12GB = DeviceInfo("cuda", "NVIDIA GeForce RTX 3060", 12 * GB, int(11.6 * GB), True)
CARD_24GB = DeviceInfo("cuda", "NVIDIA GeForce RTX 4090", 24 * GB, int(23.5 * GB), True)
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"


def qlora_7b(**changes) -> TrainConfig:
    return TrainConfig(model_name_or_path=MISTRAL, load_in_4bit=True, bf16=True, lora_r=8, lora_alpha=16,
                       lora_target_modules=("q_proj", "v_proj"), per_device_train_batch_size=1, max_length=512,
                       gradient_checkpointing=True, optim="paged_adamw_8bit").replace(**changes)


def test_4bit_weights_of_a_7b_model_are_4_to_5_5_gb():
    # published footprints are in decimal gigabytes (Mistral-7B in NF4: about 4.1 GB)
    weights = estimate.estimate_memory(qlora_7b(), estimate.shape_of(MISTRAL), CARD_12GB).parts["weights"]
    assert 4e9 <= weights <= 5.5e9


def test_qlora_7b_fits_a_12gb_card_and_bf16_lora_does_not():
    shape = estimate.shape_of(MISTRAL)
    fitting = estimate.estimate_memory(qlora_7b(), shape, CARD_12GB)
    assert fitting.verdict in ("fits", "tight") and fitting.total < 12 * GB
    too_big = estimate.estimate_memory(qlora_7b(load_in_4bit=False), shape, CARD_12GB)
    assert too_big.verdict == "will_not_fit" and too_big.biggest == "weights"
    code, params = too_big.suggestion
    assert code == "estimate_suggest_4bit" and float(params["total_gb"]) < 12


def test_qlora_8b_demo_fits_a_24gb_card():
    config = TrainConfig(model_name_or_path="meta-llama/Llama-3.1-8B-Instruct", load_in_4bit=True, bf16=True,
                         per_device_train_batch_size=4, max_length=1024, gradient_checkpointing=True,
                         optim="paged_adamw_8bit")
    result = estimate.estimate_memory(config, estimate.shape_of(config.model_name_or_path), CARD_24GB)
    assert result.verdict == "fits" and result.total < 24 * GB


def test_checkpointing_is_suggested_when_activations_do_not_fit():
    config = qlora_7b(gradient_checkpointing=False, per_device_train_batch_size=8, max_length=2048)
    result = estimate.estimate_memory(config, estimate.shape_of(MISTRAL), CARD_24GB)
    assert result.verdict == "will_not_fit" and result.biggest in ("activations", "logits")
    assert result.suggestion[0] == "estimate_suggest_checkpointing"


@pytest.mark.parametrize("modules", [("all-linear",), ("q_proj", "v_proj")])
def test_trainable_parameters_equal_peft(modules):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from engine import models

    config = TrainConfig(lora_r=16, lora_target_modules=modules)
    model = AutoModelForCausalLM.from_pretrained(models.resolve_model(BUNDLED_MODEL_ID))
    peft_model = get_peft_model(model, LoraConfig(r=16, target_modules="all-linear" if modules == ("all-linear",)
                                                   else list(modules), task_type="CAUSAL_LM"))
    trainable, total = peft_model.get_nb_trainable_parameters()
    assert estimate.trainable_parameters(config, estimate.shape_of(BUNDLED_MODEL_ID)) == (trainable, total - trainable)


def test_a_local_folder_shape_is_read_from_its_config():
    from engine import models

    folder = models.resolve_model(BUNDLED_MODEL_ID)
    assert estimate.shape_of(str(folder)) == estimate.ModelShape(str(folder), *estimate.KNOWN_SHAPES[BUNDLED_MODEL_ID.lower()])
    assert estimate.shape_of("no/such-model") is None


def test_time_scales_with_tokens_and_prefers_a_measurement():
    shape, cpu = estimate.shape_of(BUNDLED_MODEL_ID), DeviceInfo("cpu", "CPU", 24 * GB, 20 * GB, cores=2)
    one = estimate.estimate_time(TrainConfig(), shape, 10_000, cpu)
    two = estimate.estimate_time(TrainConfig(), shape, 20_000, cpu)
    assert two.seconds_per_epoch == pytest.approx(2 * one.seconds_per_epoch) and one.source == "table"
    assert 40 < one.tokens_per_second < 120  # calibrated: the bundled model trains at about 70 tokens/s here
    measured = estimate.estimate_time(TrainConfig(), shape, 7_000, cpu, measured_tokens_per_second=70)
    assert measured.seconds_per_epoch == pytest.approx(100) and measured.source == "measured"
