"""Two sides' generation on the real bundled model: one model object, mixed batches match, both stream at once."""
from __future__ import annotations

import pytest

from engine.chat.inference import ChatModel, GenParams
from engine.config import BUNDLED_MODEL_ID, TrainConfig
from engine.models import loader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with untrained but non-trivial LoRA adapters (random B), made without training: the
    final one in adapter/ and another in checkpoints/checkpoint-3."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("run")
    (folder / "config.yaml").write_text(TrainConfig().to_yaml(), encoding="utf-8")
    source = loader.resolve_model(BUNDLED_MODEL_ID)
    for seed, target in ((0, folder / "adapter"), (1, folder / "checkpoints" / "checkpoint-3")):
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(source),
                               LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                          task_type="CAUSAL_LM"))
        model.save_pretrained(str(target))
        loader.load_tokenizer(source).save_pretrained(str(target))
    return folder


def test_mixed_batch_equals_two_generations_and_one_model_serves_both(run_dir):
    chat = ChatModel()
    params = GenParams(max_new_tokens=24)
    question = [{"role": "user", "content": "Where is my parcel? It has been five days."}]
    single = chat.compare(run_dir, question, params)
    mixed = chat.compare_batch(run_dir, [question], params)[0]
    assert (mixed.base, mixed.adapter) == (single.base, single.adapter)
    assert single.base != single.adapter  # the adapter really changes the answer
    two = chat.compare_batch(run_dir, [question, [{"role": "user", "content": "退货怎么办？"}]], params)
    assert len(two) == 2 and all(p.base and p.adapter for p in two)
    assert chat.loads == 1


def test_streaming_ends_with_the_same_answers(run_dir):
    chat = ChatModel()
    params = GenParams(max_new_tokens=16)
    question = [{"role": "user", "content": "Can I change my delivery address?"}]
    steps = list(chat.stream_compare(run_dir, question, params))
    assert len(steps) > 2
    middle = steps[len(steps) // 2]
    assert middle[0] and middle[1] and middle != steps[-1]  # both sides grow together, from one mixed batch
    final = chat.compare(run_dir, question, params)
    assert steps[-1] == (final.base, final.adapter)
    each = (chat.answer(run_dir, question, params, "base"), chat.answer(run_dir, question, params, "adapter"))
    assert each == (final.base, final.adapter)  # the same greedy answers as one side after the other
    assert list(chat.stream_answer(run_dir, question, params, "base"))[-1] == final.base
    histories = ([*question, {"role": "assistant", "content": "Yes."}, {"role": "user", "content": "How?"}],
                 question)
    different = list(chat.stream_compare(run_dir, histories[0], params, histories[1]))
    assert different[-1] == tuple(vars(chat.compare(run_dir, histories[0], params, histories[1])).values())


def test_two_adapters_are_the_two_sides_on_one_model(run_dir):
    chat = ChatModel()
    params = GenParams(max_new_tokens=16)
    question = [{"role": "user", "content": "Where is my parcel? It has been five days."}]
    checkpoint = run_dir / "checkpoints" / "checkpoint-3"
    both = chat.compare(run_dir, question, params, baseline=checkpoint)
    assert both.base == chat.compare(checkpoint, question, params).adapter
    assert both.adapter == chat.compare(run_dir, question, params).adapter
    streamed = list(chat.stream_compare(run_dir, question, params, baseline=checkpoint))
    assert streamed[-1] == (both.base, both.adapter)
    assert chat.compare_batch(run_dir, [question], params, baseline=checkpoint) == [both]
    assert chat.answer(run_dir, question, params, "base", baseline=checkpoint) == both.base
    losses = chat.answer_losses(run_dir, [{"prompt": question, "completion": [
        {"role": "assistant", "content": "It is on its way."}]}], 64, baseline=checkpoint)
    assert set(losses) == {"base", "adapter"} and losses["base"] != losses["adapter"]
    assert chat.loads == 1


def test_a_checkpoint_answers_with_its_own_adapter_on_the_same_model(run_dir):
    chat = ChatModel()
    params = GenParams(max_new_tokens=24)
    question = [{"role": "user", "content": "Where is my parcel? It has been five days."}]
    final = chat.compare(run_dir, question, params)
    early = chat.compare(run_dir / "checkpoints" / "checkpoint-3", question, params)
    assert early.base == final.base and early.adapter != final.adapter
    assert chat.compare(run_dir, question, params) == final  # switching back gives the final adapter again
    assert chat.loads == 1
