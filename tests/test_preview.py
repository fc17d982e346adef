"""The preview marks exactly the tokens TRL's SFTTrainer trains on, with the same chat template."""
from __future__ import annotations

import pytest

from engine.config import BUNDLED_MODEL_ID
from engine.data import preview
from engine.data.reading import load_report
from engine.models import loader
from engine.presets import SAMPLE_DATASET


@pytest.fixture(scope="module")
def tokenizer():
    return loader.load_tokenizer(loader.resolve_model(BUNDLED_MODEL_ID))


def test_answer_is_trained_and_question_is_context(tokenizer):
    example = load_report(SAMPLE_DATASET).examples[1]  # a Chinese row
    view = preview.training_view(example, tokenizer, max_length=512)
    runs = preview.segments(view, tokenizer)
    assert [kind for _text, kind in runs] == [preview.CONTEXT, preview.TRAINED]
    context, trained = runs[0][0], runs[1][0]
    assert context.endswith("<|im_start|>assistant\n") and "下单后多久发货" in context
    assert trained.startswith("您好，感谢联系果园巷！") and trained.rstrip().endswith("<|im_end|>")


def test_max_length_cuts_the_tail(tokenizer):
    example = load_report(SAMPLE_DATASET).examples[0]
    full = preview.training_view(example, tokenizer, max_length=10_000)
    cut = preview.training_view(example, tokenizer, max_length=len(full.input_ids) - 5)
    assert cut.cut_tokens == 5 and cut.trained_tokens == full.trained_tokens - 5


def test_matches_what_sft_trainer_trains_on(tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from engine.data.splits import split_examples

    examples = load_report(SAMPLE_DATASET).examples[:4]
    train, _ = split_examples(examples, 0.0, seed=0)
    model = AutoModelForCausalLM.from_pretrained(loader.resolve_model(BUNDLED_MODEL_ID))
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=train,
                         args=SFTConfig(output_dir=str(tmp_path), max_length=64, use_cpu=True, report_to="none",
                                        activation_checkpointing=True))  # TRL's default, by its new name
    for example, row in zip(examples, trainer.train_dataset):
        view = preview.training_view(example, tokenizer, max_length=64)
        kept = [i for i, kind in zip(view.input_ids, view.kinds) if kind != preview.CUT]
        assert kept == row["input_ids"]
        assert [kind == preview.TRAINED for kind in view.kinds[:64]] == [label != -100 for label in row["labels"]]
