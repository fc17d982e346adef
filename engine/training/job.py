"""The real training job: model, tokenizer, dataset and TRL's trainer (SFTTrainer, or DPOTrainer for DPO runs)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

from engine.config import TrainConfig
from engine.data import splits, tools
from engine.models import loader
from engine.system import device
from engine.training import adapters, factories
from engine.training.callbacks import EventCallback
from engine.training.events import EventLog, ProgressEvent

REFERENCE_ADAPTER = "ref"  # the frozen copy of the starting adapter that TRL's DPOTrainer adds as the reference


class SFTJob:
    """Builds the run's trainer (loading the model and data) and exposes train/save for the runner: TRL's
    SFTTrainer, or its DPOTrainer when `config.method` is "dpo" (the worker builds this one class for both)."""

    def __init__(self, config: TrainConfig, examples: list[dict], run_dir: Path, log: EventLog,
                 stop_requested: threading.Event) -> None:
        from transformers import EarlyStoppingCallback, PrinterCallback

        log.append(ProgressEvent(message="progress_load_data"))
        train_set, eval_set = splits.build_splits(config, examples)
        folder = loader.resolve_model(config.model_name_or_path,
                                      progress=lambda code: log.append(ProgressEvent(code)))
        log.append(ProgressEvent(message="progress_load_model"))
        cuda = device.cuda_available()
        self.tokenizer = loader.load_tokenizer(folder)
        model = loader.load_model(folder, factories.model_kwargs(config, cuda, device.bf16_supported()))
        checkpoints, has_eval = run_dir / "checkpoints", eval_set is not None
        callbacks = [EventCallback(log, stop_requested)]
        if config.method == "dpo":
            self.trainer = dpo_trainer(config, model, self.tokenizer, (train_set, eval_set),
                                       factories.dpo_config(config, checkpoints, cuda, has_eval), callbacks)
        else:
            tools.require_tool_template(examples, self.tokenizer, config.model_name_or_path)
            args = factories.sft_config(config, checkpoints, cuda, has_eval)
            if config.early_stopping_patience > 0 and args.load_best_model_at_end:
                callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
            self.trainer = factories.trainer_class(cuda)(
                model=model,
                args=args,
                train_dataset=train_set,
                eval_dataset=eval_set,
                processing_class=self.tokenizer,
                peft_config=factories.lora_config(config),
                callbacks=callbacks,
            )
        self.trainer.remove_callback(PrinterCallback)  # the runner's events replace its prints

    def train(self, resume_from: str | None = None) -> None:
        """Run the trainer, resuming from checkpoint folder `resume_from` (optimizer and scheduler state) when given."""
        self.trainer.train(resume_from_checkpoint=resume_from)

    def save(self, adapter_dir: Path) -> None:
        """Write the adapter in PEFT format with the tokenizer and chat template used in training, into a hidden
        sibling folder renamed to `adapter_dir` when complete (a crash mid-save leaves no half adapter, and an
        older one stays until the new one is whole). In a multi-GPU run only the writing rank (rank 0) writes;
        the other ranks join the trainer's save, which may gather weights from every rank, and write nothing.
        A DPO run's frozen reference copy is left out: the trained adapter alone is the result."""
        if not self.trainer.args.should_save:
            self.trainer.save_model(str(adapter_dir))
            return
        with adapters.replacing_folder(adapter_dir) as staging:
            self.trainer.save_model(str(staging))
            shutil.rmtree(staging / REFERENCE_ADAPTER, ignore_errors=True)
            self.tokenizer.save_pretrained(str(staging))


def dpo_trainer(config: TrainConfig, model, tokenizer, datasets: tuple, args, callbacks: list):
    """TRL's DPOTrainer continuing the SFT adapter `config.init_adapter` names (loaded trainable onto `model`).

    No second model is loaded: the reference is the starting adapter frozen (TRL copies its weights into a second
    adapter, `ref`, of the same model) or, with `dpo_reference: base`, the base model with the adapter disabled
    (the copy is removed, and TRL then disables the adapter for the reference pass)."""
    from peft import PeftModel
    from trl import DPOTrainer

    _run_dir, adapter_dir = adapters.locate(config.init_adapter)
    policy = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    train_set, eval_set = datasets
    trainer = DPOTrainer(model=policy, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         processing_class=tokenizer, callbacks=callbacks)
    if config.dpo_reference == "base" and REFERENCE_ADAPTER in policy.peft_config:
        policy.delete_adapter(REFERENCE_ADAPTER)
    return trainer
