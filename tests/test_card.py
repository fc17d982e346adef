"""The model card: Hugging Face metadata that parses, the data's languages, the licence, the results and the study."""
from __future__ import annotations

import dataclasses
import math

import pytest
import yaml

from engine.export.card import (
    BUNDLED_LICENSE,
    CardFacts,
    StudySummary,
    card_facts,
    front_matter,
    loss_curve,
    model_card,
)
from engine.export.source import ExportSource
from engine.training.events import EventLog, LogEvent
from tests.share_fixtures import make_run

STUDY = StudySummary("pilot <b>one</b>", win_rate=0.625, low=0.45, high=0.77, n_votes=40, n_raters=3, n_items=12,
                     ties=4, base_wins=12)


def events_of(source: ExportSource) -> list:
    return EventLog.read(source.run_dir / "events.jsonl").since(0)[0]


def test_the_front_matter_loads_and_has_hugging_faces_keys(tmp_path):
    source = make_run(tmp_path)
    card = model_card(source, card_facts(source, events_of(source), None))
    assert card.startswith("---\n")
    metadata = front_matter(card)
    assert metadata == yaml.safe_load(card.split("---\n")[1])
    assert metadata["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert metadata["library_name"] == "peft" and metadata["pipeline_tag"] == "text-generation"
    assert metadata["tags"] == ["lora", "trl", "sft"]
    assert metadata["language"] == ["en"] and metadata["datasets"] == ["my_data"]
    assert metadata["license"] == BUNDLED_LICENSE


def test_a_qlora_run_is_tagged_and_said(tmp_path):
    source = make_run(tmp_path, load_in_4bit=True)
    card = model_card(source, card_facts(source, events_of(source), None))
    assert front_matter(card)["tags"] == ["lora", "trl", "sft", "qlora"]
    assert "QLoRA" in card and "4-bit" in card


def test_languages_follow_the_data_most_rows_first(tmp_path):
    rows = [{"instruction": f"第{i}个问题是什么？", "output": "这是一个中文回答。"} for i in range(4)]
    rows += [{"instruction": "What is this?", "output": "An English answer."}]
    source = make_run(tmp_path, rows=rows)
    assert card_facts(source, [], None).languages == ["zh", "en"]


def test_a_missing_dataset_leaves_languages_out(tmp_path):
    source = make_run(tmp_path)
    (tmp_path / "my_data.jsonl").unlink()
    facts = card_facts(source, [], None)
    assert facts.languages == [] and facts.dataset_name == "my_data"
    assert "language" not in front_matter(model_card(source, facts))


def test_a_local_base_gives_its_own_cards_licence_and_no_hub_base_model(tmp_path):
    base = tmp_path / "my-base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: llama3.1\nlanguage: en\n---\n# My base\n", encoding="utf-8")
    (base / "config.json").write_text("{}")
    source = make_run(tmp_path, model_name_or_path=str(base))
    metadata = front_matter(model_card(source, card_facts(source, [], None)))
    assert metadata["license"] == "llama3.1"
    assert "base_model" not in metadata  # the Hub's base_model names a Hub model, not a folder


def test_the_results_give_losses_perplexity_and_the_study(tmp_path):
    source = make_run(tmp_path)
    facts = card_facts(source, events_of(source), STUDY)
    assert facts.eval_loss == 1.5 and facts.perplexity == pytest.approx(math.exp(1.5))
    card = model_card(source, facts)
    assert "Evaluation loss: 1.5000 (perplexity 4.48)" in card
    assert "Final training loss: 1.0000 (step 10)" in card
    assert "62.5% (95% Wilson interval 45.0%–77.0%)" in card
    assert "raters: 3" in card and "items: 12" in card and "12 for the base" in card
    assert "pilot &lt;b&gt;one&lt;/b&gt;" in card and "<b>" not in card


def test_a_study_against_another_run_names_that_run_not_the_base(tmp_path):
    source = make_run(tmp_path)
    study = dataclasses.replace(STUDY, baseline_run="sft-run", baseline_step=30)
    card = model_card(source, card_facts(source, events_of(source), study))
    assert "those of run `sft-run` (step 30)" in card and "12 for run `sft-run`" in card
    assert "base model" not in card.split("### Blind study")[1]


def test_without_a_study_or_losses_the_card_says_so(tmp_path):
    source = make_run(tmp_path, events=[])
    card = model_card(source, CardFacts(languages=["en"], dataset_name="my_data"))
    assert "No loss was recorded" in card and "No blind study" in card


def test_the_curve_keeps_finite_points_only():
    events = [LogEvent(1, loss=2.0), LogEvent(2, loss=math.nan), LogEvent(3, eval_loss=1.8), LogEvent(4)]
    assert loss_curve(events) == [{"step": 1, "loss": 2.0}, {"step": 3, "eval_loss": 1.8}]


@pytest.mark.slow
def test_a_trained_runs_facts(run_copy):
    source = ExportSource.of(run_copy)
    facts = card_facts(source, events_of(source), None)
    assert facts.languages == ["en"] and facts.dataset_name == "english" and facts.license == BUNDLED_LICENSE
    assert [point["step"] for point in facts.curve] == [1, 2, 3, 4]
    assert front_matter(model_card(source, facts))["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_bundled_models_alias_is_named_by_its_hub_id(tmp_path):
    source = make_run(tmp_path, model_name_or_path="bundled")
    card = model_card(source, card_facts(source, events_of(source), None))
    assert front_matter(card)["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert front_matter(card)["license"] == BUNDLED_LICENSE
    assert "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct" in card
