"""Pure factories from TrainConfig to TRL/PEFT/transformers config objects (no model is loaded)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config import TrainConfig

# TrainConfig field -> the SFTConfig argument it sets. `gradient_checkpointing` keeps its name in the
# config (the CLI and config.yaml contract); transformers 5.23 renamed the argument `activation_checkpointing`.
SFT_FIELDS = (
    ("learning_rate", "learning_rate"),
    ("num_train_epochs", "num_train_epochs"),
    ("max_steps", "max_steps"),
    ("per_device_train_batch_size", "per_device_train_batch_size"),
    ("per_device_train_batch_size", "per_device_eval_batch_size"),
    ("gradient_accumulation_steps", "gradient_accumulation_steps"),
    ("lr_scheduler_type", "lr_scheduler_type"),
    ("warmup_steps", "warmup_steps"),
    ("weight_decay", "weight_decay"),
    ("optim", "optim"),
    ("gradient_checkpointing", "activation_checkpointing"),
    ("train_sampling_strategy", "train_sampling_strategy"),
    ("bf16", "bf16"),
    ("fp16", "fp16"),
    ("seed", "seed"),
    ("logging_steps", "logging_steps"),
    ("save_total_limit", "save_total_limit"),
    ("max_length", "max_length"),
)
# SFTConfig arguments every run sets the same way.
SFT_FIXED = {
    "logging_first_step": True,
    "packing": False,
    "include_num_input_tokens_seen": "non_padding",  # the callback's tokens/s needs it
    "report_to": "none",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
}


def resolve_dtype(dtype: str, cuda: bool, bf16_supported: bool) -> str:
    """The weight dtype name for the `dtype` setting: float32 on CPU, bfloat16 (or float16) on CUDA for "auto"."""
    if dtype != "auto":
        return dtype
    if not cuda:
        return "float32"
    return "bfloat16" if bf16_supported else "float16"


def quantization_settings(config: TrainConfig) -> dict[str, Any] | None:
    """BitsAndBytesConfig arguments for 8-bit or 4-bit (NF4, double quant) loading, less the compute dtype; or None."""
    if config.load_in_8bit:
        return {"load_in_8bit": True}
    if config.load_in_4bit:
        return {"load_in_4bit": True, "bnb_4bit_quant_type": config.bnb_4bit_quant_type,
                "bnb_4bit_use_double_quant": config.use_bnb_nested_quant}
    return None


def bnb_config(config: TrainConfig, compute_dtype: str):
    """A BitsAndBytesConfig for 4-bit (NF4, double quant) or 8-bit loading, or None."""
    settings = quantization_settings(config)
    if settings is None:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if config.load_in_8bit:
        return BitsAndBytesConfig(**settings)
    return BitsAndBytesConfig(**settings, bnb_4bit_compute_dtype=getattr(torch, compute_dtype))


def model_kwargs(config: TrainConfig, cuda: bool, bf16_supported: bool) -> dict[str, Any]:
    """Keyword arguments for `from_pretrained` of the base model; a quantized model goes whole onto this process's
    GPU (`LOCAL_RANK`, which accelerate's launcher sets for each process of a multi-GPU run; 0 alone)."""
    import torch

    dtype = resolve_dtype(config.dtype, cuda, bf16_supported)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    quant = bnb_config(config, dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
        if cuda:
            kwargs["device_map"] = {"": local_rank()}
    return kwargs


def local_rank() -> int:
    """This process's GPU index on its machine in a multi-GPU run (the launcher's LOCAL_RANK), 0 otherwise."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def lora_settings(config: TrainConfig) -> dict[str, Any]:
    """LoraConfig arguments of a run."""
    modules = list(config.lora_target_modules)
    return {"r": config.lora_r, "lora_alpha": config.lora_alpha, "lora_dropout": config.lora_dropout,
            "target_modules": "all-linear" if modules == ["all-linear"] else modules,
            "use_rslora": config.use_rslora, "use_dora": config.use_dora, "task_type": "CAUSAL_LM"}


def lora_config(config: TrainConfig):
    """The PEFT LoraConfig of a run."""
    from peft import LoraConfig

    return LoraConfig(**lora_settings(config))


def trainer_class(cuda: bool):
    """TRL's SFTTrainer; on a CPU with the model's own full-logits loss in place of TRL's fused LM head.

    TRL 1.16 computes the loss through a fused, chunked LM head that never holds the full logits (it
    saves GPU memory with large vocabularies) but computes the head again for entropy, accuracy and
    backward: on a CPU, where memory is plentiful and compute is short, a step of the bundled model
    took 35% longer (72.6 against 98.2 computed tokens/s, batch 4, rows up to 512 tokens). The loss is
    the same mean cross-entropy over the answer tokens (tested); entropy and token accuracy are not
    logged on a CPU.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    if cuda:
        return SFTTrainer

    class FullLogitsSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss is the model's own, computed from the full logits."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """transformers' Trainer.compute_loss: the model's cross-entropy over the unmasked labels."""
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return FullLogitsSFTTrainer


def sft_settings(config: TrainConfig, has_eval: bool) -> dict[str, Any]:
    """SFTConfig arguments of a run, but for `output_dir` and `use_cpu` (they depend on the machine)."""
    eval_strategy = config.eval_strategy if has_eval else "no"
    keep_best = eval_strategy != "no" and (config.load_best_model_at_end or config.early_stopping_patience > 0)
    return {
        **{argument: getattr(config, name) for name, argument in SFT_FIELDS},
        **SFT_FIXED,
        "eval_strategy": eval_strategy,
        "eval_steps": config.eval_steps if eval_strategy == "steps" else None,
        "save_strategy": eval_strategy if keep_best else "steps",  # keeping the best needs a save per evaluation
        "save_steps": config.eval_steps if keep_best and eval_strategy == "steps" else config.save_steps,
        "load_best_model_at_end": keep_best,
        "metric_for_best_model": "eval_loss" if keep_best else None,
        "greater_is_better": False if keep_best else None,
        # several processes (DDP): every LoRA parameter takes part in every step, and DDP's search for unused
        # ones (transformers' default for a PEFT model) breaks under gradient checkpointing
        **({"ddp_find_unused_parameters": False} if config.num_gpus > 1 else {}),
    }


def sft_config(config: TrainConfig, output_dir: str | Path, cuda: bool, has_eval: bool):
    """The SFTConfig for a run; checkpoints go to `output_dir`."""
    from trl import SFTConfig

    return SFTConfig(output_dir=str(output_dir), use_cpu=not cuda, **sft_settings(config, has_eval))


# SFTConfig arguments that DPOConfig does not take.
SFT_ONLY = ("packing",)


def dpo_settings(config: TrainConfig, has_eval: bool) -> dict[str, Any]:
    """DPOConfig arguments of a DPO run, but for `output_dir` and `use_cpu`: the SFT run's settings (schedule,
    saving, evaluation, precision) with DPO's beta and loss type. Batches are drawn at random: TRL's preference
    rows carry no `input_ids` column for grouping by length."""
    settings = {key: value for key, value in sft_settings(config, has_eval).items() if key not in SFT_ONLY}
    return {**settings, "train_sampling_strategy": "random", "beta": config.beta, "loss_type": [config.loss_type]}


def dpo_config(config: TrainConfig, output_dir: str | Path, cuda: bool, has_eval: bool):
    """The DPOConfig for a DPO run; checkpoints go to `output_dir`."""
    from trl import DPOConfig

    return DPOConfig(output_dir=str(output_dir), use_cpu=not cuda, **dpo_settings(config, has_eval))
