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


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8").read().splitlines()]


def edit_first_cell(client: Client, column: int, text: str) -> None:
    """Through the client's own editor: write `text` into the first row's `column` and apply."""
    grid, _page, _info = client.predict("en", 1, "", api_name="/editor_page")
    rows = [list(r) for r in grid["data"]]
    rows[0][column] = text
    client.predict("en", 1, "", {"headers": grid["headers"], "data": rows}, api_name="/editor_apply")


def test_two_sessions_check_edit_exclude_and_save_their_own_datasets(serve, tmp_path):
    faq = [{"instruction": f"Question {i}", "output": "" if i in (2, 4) else f"Answer {i}"} for i in range(1, 9)]
    qa = [{"question": f"Where is order {i}?", "answer": "" if i % 10 == 0 else f"It ships today ({i})."}
          for i in range(1, 31)]
    path_a, path_b = write_rows(tmp_path / "faq.jsonl", faq), write_rows(tmp_path / "qa.jsonl", qa)
    data = tmp_path / "data"
    url, _app = serve(Studio(tmp_path / "runs", job_factory=FakeJob, data_root=data))
    a, b = Client(url, verbose=False), Client(url, verbose=False)

    *_, grid_a, _page, _info = a.predict(lang="en", file_path=str(path_a), api_name="/check_dataset")
    *_, grid_b, _page, _info = b.predict(lang="en", file_path=str(path_b), api_name="/check_dataset")
    assert grid_a["headers"] == ["#", "instruction", "output"] and grid_b["headers"] == ["#", "question", "answer"]
    excluded_a, summary_a, *_ = a.predict(lang="en", file_path=str(path_a), api_name="/exclude_rows_with_errors")
    excluded_b, summary_b, *_ = b.predict(lang="en", file_path=str(path_b), api_name="/exclude_rows_with_errors")
    assert excluded_a == str(data / "faq" / "v0001.jsonl") and "6 rows" in summary_a
    assert excluded_b == str(data / "qa" / "v0001.jsonl") and "27 rows" in summary_b
    edit_first_cell(a, 2, "Edited by A")
    edit_first_cell(b, 2, "Edited by B")
    saved_a, saved_b = a.predict("en", api_name="/editor_save"), b.predict("en", api_name="/editor_save")

    assert saved_a == str(data / "faq" / "v0002.jsonl") and saved_b == str(data / "qa" / "v0002.jsonl")
    kept_a, kept_b = [r for r in faq if r["output"]], [r for r in qa if r["answer"]]
    assert read_rows(excluded_a) == kept_a and read_rows(excluded_b) == kept_b
    assert read_rows(saved_a) == [{**kept_a[0], "output": "Edited by A"}] + kept_a[1:]
    assert read_rows(saved_b) == [{**kept_b[0], "answer": "Edited by B"}] + kept_b[1:]
    assert sorted(p.name for p in data.iterdir()) == ["faq", "qa"]
    for folder in ("faq", "qa"):
        assert sorted(p.name for p in (data / folder).iterdir()) == ["latest.jsonl", "v0001.jsonl", "v0002.jsonl"]
    assert read_rows(path_a) == faq and read_rows(path_b) == qa  # the imported files are never written
