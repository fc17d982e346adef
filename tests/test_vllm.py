"""The `vllm serve` line for an adapter and the warnings about what vLLM refuses or needs."""
from __future__ import annotations

import pytest

from engine.export.source import ExportSource
from engine.export.vllm import MAX_LORA_RANKS, max_lora_rank, vllm_command
from engine.locales import render, wordings
from tests.share_fixtures import RUN_ID, make_run

CODES = ("vllm_rank_rounded", "vllm_rank_too_large", "vllm_modules_to_save", "vllm_dora", "vllm_bias",
         "vllm_local_base")


def codes(advice) -> list[str]:
    return [code for code, _params in advice.warnings]


def test_the_exact_command_for_a_plain_adapter(tmp_path):
    source = make_run(tmp_path)
    advice = vllm_command(source)
    assert advice.command == (f"vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --lora-modules "
                              f"run-{RUN_ID}={source.adapter_dir.resolve()} --max-lora-rank 16")
    assert advice.warnings == []


def test_a_name_is_kept_safe_and_a_path_with_spaces_quoted(tmp_path):
    source = make_run(tmp_path / "my runs")
    command = vllm_command(source, "support bot v2").command
    assert f"--lora-modules 'support-bot-v2={source.adapter_dir.resolve()}'" in command


def test_a_checkpoints_default_name_names_the_checkpoint(tmp_path):
    source = make_run(tmp_path)
    checkpoint = source.run_dir / "checkpoints" / "checkpoint-40"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_config.json").write_text((source.adapter_dir / "adapter_config.json").read_text())
    assert f"run-{RUN_ID}-checkpoint-40=" in vllm_command(ExportSource.of(checkpoint)).command


@pytest.mark.parametrize("rank, expected", [(1, 1), (8, 8), (12, 16), (300, 320), (512, 512), (513, None)])
def test_the_smallest_accepted_max_rank(rank, expected):
    assert max_lora_rank(rank) == expected


def test_a_rank_vllm_does_not_accept_is_rounded_up_with_a_warning(tmp_path):
    advice = vllm_command(make_run(tmp_path, adapter_config={"r": 12}))
    assert advice.command.endswith("--max-lora-rank 16")
    assert advice.warnings == [("vllm_rank_rounded", {"rank": 12, "max_rank": 16,
                                                      "ranks": ", ".join(map(str, MAX_LORA_RANKS))})]


def test_a_larger_rank_in_the_rank_pattern_counts(tmp_path):
    advice = vllm_command(make_run(tmp_path, adapter_config={"r": 8, "rank_pattern": {"q_proj": 64}}))
    assert advice.command.endswith("--max-lora-rank 64") and advice.warnings == []


def test_a_rank_above_vllms_largest_is_refused_in_words(tmp_path):
    advice = vllm_command(make_run(tmp_path, adapter_config={"r": 1024}))
    assert codes(advice) == ["vllm_rank_too_large"]
    assert "1024" in render(*advice.warnings[0]) and "512" in render(*advice.warnings[0])


def test_modules_to_save_dora_and_bias_are_warned(tmp_path):
    advice = vllm_command(make_run(tmp_path, adapter_config={"modules_to_save": ["lm_head", "embed_tokens"],
                                                             "use_dora": True, "bias": "lora_only"}))
    assert codes(advice) == ["vllm_modules_to_save", "vllm_dora", "vllm_bias"]
    assert "lm_head, embed_tokens" in render(*advice.warnings[0], lang="zh")


def test_a_local_base_folder_is_warned(tmp_path):
    base = tmp_path / "base-model"
    base.mkdir()
    advice = vllm_command(make_run(tmp_path, model_name_or_path=str(base)))
    assert advice.command.startswith(f"vllm serve {base} --enable-lora")
    assert advice.warnings == [("vllm_local_base", {"path": str(base)})]


@pytest.mark.parametrize("code", CODES)
def test_every_warning_is_worded_in_both_languages(code):
    english, chinese = wordings(code, "en", "zh")
    assert english != chinese and english.strip() and chinese.strip()


@pytest.mark.parametrize("alias", ["bundled", "SmolLM2-135M-Instruct"])
def test_the_bundled_models_alias_is_served_by_its_hub_id(tmp_path, alias):
    command = vllm_command(make_run(tmp_path, model_name_or_path=alias)).command
    assert command.startswith("vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora")
