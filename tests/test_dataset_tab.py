"""The Dataset tab through gradio_client: import, fix a flagged row in the grid, save, re-check clean."""
from __future__ import annotations

import json

from gradio_client import Client

from engine.studio import Studio
from tests.conftest import FakeJob, sample_rows


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def errors_in(problems: dict) -> list[list]:
    return [row for row in problems["data"] if row[0] == "error"]


def test_fix_a_flagged_row_save_and_recheck_clean(serve, tmp_path):
    rows = sample_rows()[:30]
    rows[1] = {**rows[1], "output": ""}  # row 2 has no answer
    path = write_rows(tmp_path / "support.jsonl", rows)
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data"))
    client = Client(url, verbose=False)

    summary, _histogram, problems, *_mapping, grid, page, _info = client.predict(
        lang="en", file_path=str(path), api_name="/check_dataset")
    assert errors_in(problems) == [["error", 2, "output", "Row 2: the field 'output' is missing or empty."]]
    assert grid["headers"] == ["#", "instruction", "input", "output"] and page == 1

    fixed = [list(r) for r in grid["data"]]
    fixed[1][3] = "您好，感谢联系果园巷！我们会尽快处理。果园巷客服团队 敬上"
    client.predict("en", 1, "", {"headers": grid["headers"], "data": fixed}, api_name="/editor_apply")
    saved = client.predict("en", api_name="/editor_save")
    assert saved.endswith("v0001.jsonl")

    summary, _histogram, problems, *_rest = client.predict(lang="en", file_path=saved, api_name="/check_dataset")
    assert errors_in(problems) == [] and "Ready to train" in summary
    assert json.loads(open(saved, encoding="utf-8").read().splitlines()[1])["output"].startswith("您好")


def test_exclude_rows_with_errors_in_one_click_and_mapping(serve, tmp_path):
    rows = [{"question": f"Where is order {i}?", "answer": "" if i % 10 == 0 else f"It ships today ({i})."}
            for i in range(1, 31)]
    path = write_rows(tmp_path / "qa.jsonl", rows)
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data"))
    client = Client(url, verbose=False)
    _summary, _h, problems, fmt, *rest = client.predict(lang="en", file_path=str(path), api_name="/check_dataset")
    assert fmt["value"] == "prompt_completion"
    assert [r[1] for r in errors_in(problems)] == [10, 20, 30]
    assert {r[2] for r in errors_in(problems)} == {"answer"}  # the user's column is named
    new_path, summary, _h, problems, *_ = client.predict(lang="en", file_path=str(path),
                                                         api_name="/exclude_rows_with_errors")
    assert errors_in(problems) == [] and "27 rows" in summary
    assert new_path.endswith("v0001.jsonl")


def test_model_view_highlights_the_trained_answer(serve, tmp_path):
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data"))
    client = Client(url, verbose=False)
    from engine.presets import SAMPLE_DATASET

    spans = client.predict(lang="zh", file_path=str(SAMPLE_DATASET), row=2, api_name="/model_view")
    kinds = [(span["token"], span["class_or_confidence"]) for span in spans]
    assert kinds[0][1] == "context" and "下单后多久发货" in kinds[0][0]
    assert kinds[1][1] == "trained" and kinds[1][0].startswith("您好，感谢联系果园巷！")
