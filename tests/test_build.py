"""build: TrainConfig -> SFTConfig / LoraConfig / BitsAndBytesConfig / from_pretrained kwargs."""
from __future__ import annotations

import warnings

import pytest

from engine.config import TrainConfig
from engine.training import factories

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")


def _value(x):
    return getattr(x, "value", x)


@pytest.fixture(scope="module")
def default_args(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "checkpoints"
    return factories.sft_config(TrainConfig(), out, cuda=False, has_eval=False), out


def test_sft_config_maps_the_fields(tmp_path):
    config = TrainConfig(learning_rate=5e-5, num_train_epochs=2.0, per_device_train_batch_size=3,
                         gradient_accumulation_steps=2, max_length=256, max_steps=11, seed=9,
                         logging_steps=4, save_steps=7, save_total_limit=3, lr_scheduler_type="linear",
                         weight_decay=0.01, optim="adafactor")
    args = factories.sft_config(config, tmp_path / "ck", cuda=False, has_eval=False)
    assert args.output_dir == str(tmp_path / "ck")
    assert args.learning_rate == 5e-5
    assert args.num_train_epochs == 2.0
    assert args.max_steps == 11
    assert args.per_device_train_batch_size == 3
    assert args.per_device_eval_batch_size == 3
    assert args.gradient_accumulation_steps == 2
    assert args.max_length == 256
    assert args.seed == 9
    assert args.logging_steps == 4
    assert args.save_steps == 7 and args.save_total_limit == 3
    assert _value(args.lr_scheduler_type) == "linear"
    assert args.weight_decay == 0.01
    assert _value(args.optim) == "adafactor"


def test_sft_config_defaults(default_args):
    args, out = default_args
    assert args.gradient_checkpointing is False
    assert args.packing is False
    assert _value(args.eval_strategy) == "no"
    assert args.use_cpu is True
    assert args.bf16 is False and args.fp16 is False
    assert args.report_to in ([], "none", ["none"])  # nothing is sent anywhere
    assert args.include_num_input_tokens_seen not in (False, "no")  # the callback's tokens/s needs it
    assert args.output_dir == str(out)


def test_sft_config_eval_only_with_an_eval_set(tmp_path):
    config = TrainConfig(eval_strategy="epoch")
    assert _value(factories.sft_config(config, tmp_path, cuda=False, has_eval=False).eval_strategy) == "no"
    assert _value(factories.sft_config(config, tmp_path, cuda=False, has_eval=True).eval_strategy) == "epoch"
    steps = factories.sft_config(TrainConfig(eval_strategy="steps", eval_steps=13), tmp_path, cuda=False, has_eval=True)
    assert _value(steps.eval_strategy) == "steps" and steps.eval_steps == 13


def test_sft_config_gradient_checkpointing_on(tmp_path):
    args = factories.sft_config(TrainConfig(gradient_checkpointing=True), tmp_path, cuda=False, has_eval=False)
    assert args.gradient_checkpointing is True
    assert args.activation_checkpointing is True  # transformers 5.23's name for it


@pytest.mark.parametrize("checkpointing", [True, False])
def test_sft_config_uses_no_deprecated_argument(tmp_path, checkpointing):
    """transformers 5.23 deprecates `gradient_checkpointing` (FutureWarning): the factory sets the new name."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        args = factories.sft_config(TrainConfig(gradient_checkpointing=checkpointing, eval_strategy="steps"),
                                    tmp_path, cuda=False, has_eval=True)
    assert args.activation_checkpointing is checkpointing and args.gradient_checkpointing is checkpointing


def test_the_sft_table_names_real_fields_and_arguments(tmp_path):
    import dataclasses

    from trl import SFTConfig

    arguments = {f.name for f in dataclasses.fields(SFTConfig)}
    config_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {name for name, _argument in factories.SFT_FIELDS} <= config_fields
    assert {argument for _name, argument in factories.SFT_FIELDS} | set(factories.SFT_FIXED) <= arguments
    assert "gradient_checkpointing" not in {argument for _name, argument in factories.SFT_FIELDS}  # deprecated
    config = TrainConfig(learning_rate=3e-5, num_train_epochs=1.5, max_steps=9, per_device_train_batch_size=3,
                         gradient_accumulation_steps=2, lr_scheduler_type="linear", warmup_steps=4, weight_decay=0.1,
                         optim="adafactor", gradient_checkpointing=True, train_sampling_strategy="random",
                         seed=5, logging_steps=3, save_total_limit=4, max_length=128)
    assert all(getattr(config, name) != getattr(TrainConfig(), name) for name, _argument in factories.SFT_FIELDS
               if name not in ("bf16", "fp16"))  # every mapped field is exercised with a non-default value
    args = factories.sft_config(config, tmp_path, cuda=False, has_eval=False)
    for name, argument in factories.SFT_FIELDS:
        assert _value(getattr(args, argument)) == getattr(config, name), argument
    for argument, value in factories.SFT_FIXED.items():
        expected = ([], "none", ["none"]) if argument == "report_to" else (value,)  # "none" may become []
        assert _value(getattr(args, argument)) in expected, argument


def test_settings_are_the_configs_arguments():
    """The plain dicts the exporter writes are what the config objects are built from."""
    config = TrainConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4", lora_target_modules=("q_proj",), lora_r=4)
    assert factories.quantization_settings(TrainConfig()) is None
    assert factories.quantization_settings(TrainConfig(load_in_8bit=True, load_in_4bit=True)) == {"load_in_8bit": True}
    assert factories.quantization_settings(config) == {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4",
                                                       "bnb_4bit_use_double_quant": True}
    assert factories.lora_settings(config) == {"r": 4, "lora_alpha": 32, "lora_dropout": 0.05,
                                               "target_modules": ["q_proj"], "use_rslora": False, "use_dora": False,
                                               "task_type": "CAUSAL_LM"}


def test_lora_config_all_linear():
    lora = factories.lora_config(TrainConfig(lora_r=8, lora_alpha=16, lora_dropout=0.1))
    assert lora.target_modules == "all-linear"
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (8, 16, 0.1)
    assert _value(lora.task_type) == "CAUSAL_LM"


def test_lora_config_module_list():
    lora = factories.lora_config(TrainConfig(lora_target_modules=("q_proj", "v_proj")))
    assert set(lora.target_modules) == {"q_proj", "v_proj"}


def test_no_bnb_config_without_quantization():
    assert factories.bnb_config(TrainConfig(), "float32") is None


def test_bnb_config_4bit_nf4_double_quant():
    quant = factories.bnb_config(TrainConfig(load_in_4bit=True), "bfloat16")
    assert quant.load_in_4bit is True and quant.load_in_8bit is False
    assert quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant is True
    assert quant.bnb_4bit_compute_dtype == torch.bfloat16


def test_bnb_config_follows_the_fields():
    quant = factories.bnb_config(TrainConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4",
                                         use_bnb_nested_quant=False), "float16")
    assert quant.bnb_4bit_quant_type == "fp4" and quant.bnb_4bit_use_double_quant is False
    assert quant.bnb_4bit_compute_dtype == torch.float16


def test_bnb_config_8bit():
    quant = factories.bnb_config(TrainConfig(load_in_8bit=True), "float16")
    assert quant.load_in_8bit is True and quant.load_in_4bit is False


@pytest.mark.parametrize("dtype,cuda,bf16,expected", [
    ("auto", False, False, "float32"),
    ("auto", False, True, "float32"),
    ("auto", True, True, "bfloat16"),
    ("auto", True, False, "float16"),
    ("float16", False, False, "float16"),
    ("bfloat16", True, False, "bfloat16"),
])
def test_resolve_dtype(dtype, cuda, bf16, expected):
    assert factories.resolve_dtype(TrainConfig(dtype=dtype).dtype, cuda, bf16) == expected


def test_model_kwargs_cpu():
    assert factories.model_kwargs(TrainConfig(), cuda=False, bf16_supported=False) == {"dtype": torch.float32}


def test_model_kwargs_cuda_with_4bit():
    kwargs = factories.model_kwargs(TrainConfig(load_in_4bit=True), cuda=True, bf16_supported=True)
    assert kwargs["dtype"] == torch.bfloat16
    assert kwargs["quantization_config"].load_in_4bit is True
    assert kwargs["quantization_config"].bnb_4bit_compute_dtype == torch.bfloat16
    assert kwargs["device_map"] == {"": 0}


def test_model_kwargs_cuda_without_quantization_has_no_device_map():
    kwargs = factories.model_kwargs(TrainConfig(), cuda=True, bf16_supported=False)
    assert kwargs == {"dtype": torch.float16}


def test_keeping_the_best_checkpoint_saves_at_every_evaluation(tmp_path):
    from engine.config import TrainConfig
    from engine.training import factories

    args = factories.sft_config(TrainConfig(eval_strategy="steps", eval_steps=7, save_steps=50,
                                        early_stopping_patience=2), tmp_path, cuda=False, has_eval=True)
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"
    assert args.save_strategy == "steps" and args.save_steps == 7 and args.greater_is_better is False
    plain = factories.sft_config(TrainConfig(eval_strategy="epoch"), tmp_path, cuda=False, has_eval=True)
    assert not plain.load_best_model_at_end and plain.save_steps == 50
    no_eval = factories.sft_config(TrainConfig(load_best_model_at_end=True), tmp_path, cuda=False, has_eval=False)
    assert not no_eval.load_best_model_at_end


def test_early_stopping_without_evaluation_is_refused():
    from engine.config import TrainConfig

    issues = TrainConfig(early_stopping_patience=2, eval_strategy="no").validate()
    assert ("config_best_needs_eval", "eval_strategy") in [(i.code, i.field) for i in issues]


@pytest.mark.slow
def test_the_cpu_trainer_computes_the_same_loss_as_trls_fused_head(tmp_path, english_dataset):
    """The full-logits loss used on a CPU equals TRL's fused-head loss on the same batch (answer tokens
    only), and its gradients flow into the LoRA weights."""
    import torch
    from trl import SFTTrainer

    from engine.config import BUNDLED_MODEL_ID
    from engine.data import reading, splits
    from engine.models import loader

    config = TrainConfig(dataset_path=str(english_dataset), lora_dropout=0.0, per_device_train_batch_size=4,
                         max_length=128, eval_split=0.0)
    train, _ = splits.split_examples(reading.load_report(config.dataset_path).examples, 0.0, config.seed)
    folder = loader.resolve_model(BUNDLED_MODEL_ID)
    args = factories.sft_config(config, tmp_path, cuda=False, has_eval=False)
    trainer = factories.trainer_class(cuda=False)(
        model=loader.load_model(folder, factories.model_kwargs(config, False, False)), args=args, train_dataset=train,
        processing_class=loader.load_tokenizer(folder), peft_config=factories.lora_config(config))
    assert isinstance(trainer, SFTTrainer)
    batch = next(iter(trainer.get_train_dataloader()))
    assert (batch["labels"] == -100).any()  # the prompt is masked out
    full = trainer.compute_loss(trainer.model, dict(batch))
    fused = SFTTrainer.compute_loss(trainer, trainer.model, dict(batch))
    assert torch.allclose(full, fused, rtol=1e-4)
    full.backward()
    grads = [p.grad for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
