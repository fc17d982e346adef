"""The blind study through the organiser's UI: create a draft, pre-generate, invite raters (links and QR codes),
open / pause / close, follow the dashboard, unblind, export; and the tab's handlers called directly with a fake
studio. Raters judge in the portal (tests/test_portal.py); here they vote through the studio."""
from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import gradio as gr
import gradio.utils
import pytest
from gradio_client import Client
from PIL import Image, UnidentifiedImageError

from engine import Invitation, RaterProgress
from engine.chat.inference import AnswerPair
from engine.errors import EngineError
from engine.locales import render_error
from engine.presets import SAMPLE_DATASET
from engine.studio import Studio
from engine.study.stats import summarize
from tests.conftest import FakeJob
from ui import study_organise, study_results
from ui.i18n import t
from ui.study_organise import SetupView
from ui.study_results import ResultsView

PNG = b"\x89PNG\r\n\x1a\n"


class FakeChat:
    """Answers that the test (not the rater) can tell apart; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def compare(self, run_dir, messages, params, baseline=None) -> AnswerPair:
        self.calls += 1
        question = messages[-1]["content"]
        return AnswerPair(base=f"Well, about '{question}': maybe.",
                          adapter=f"Thanks for reaching out! About {question}.")


def finished_run(studio: Studio) -> str:
    run_id = studio.start(studio.default_config().replace(dataset_path=str(SAMPLE_DATASET)))
    studio.runner.wait(30)
    return run_id


def token_of(link: str) -> str:
    """The invitation token at the end of a rater's link."""
    return parse_qs(urlsplit(link).query)["invite"][0]


def gradio_files() -> dict[Path, bytes]:
    """Every file in gradio's upload and cache folders (where it writes the files a component shows), by path."""
    folders = (Path(gradio.utils.get_upload_folder()), gradio.utils.get_cache_folder())
    return {path: path.read_bytes() for folder in folders for path in folder.rglob("*") if path.is_file()}


def pixels(content: bytes) -> tuple | None:
    """An image file's size and grey pixels (None when it is not an image), to recognise it in any format."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size, image.convert("L").tobytes()
    except UnidentifiedImageError:
        return None


def files_holding(before: dict[Path, bytes], qr_png: bytes, token: str) -> list[Path]:
    """The files gradio wrote since `before` that hold the invitation: its QR image (in any encoding) or token."""
    return [path for path, content in gradio_files().items() if before.get(path) != content
            and (token.encode() in content or pixels(content) == pixels(qr_png))]


def test_two_raters_and_unblinded_statistics(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    run_id = finished_run(studio)
    questions = tmp_path / "questions.csv"
    questions.write_text("question,domain\n" + "".join(f"Where is parcel #{i},{'shipping' if i < 5 else 'refunds'}\n"
                                                      for i in range(10)), encoding="utf-8")
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    study, info = organiser.predict("en", "Support answers", str(questions), run_id, "terminology, logic", "zh", True,
                                    0, api_name="/study_create")
    assert "10 questions" in info
    study_id = study["value"] if isinstance(study, dict) else study
    assert studio.study(study_id)["state"] == "draft"
    assert (studio.study(study_id)["lang"], studio.study(study_id)["show_reference"]) == ("zh", True)
    assert "10 answer pair(s) generated" in organiser.predict("en", study_id, api_name="/study_generate")
    assert studio.chat.calls == 10
    organiser.predict("en", study_id, api_name="/study_generate")  # resumable: nothing left to do
    assert studio.chat.calls == 10
    raters = {}
    for name in ("Dr. Li", "Dr. Wong"):
        before = gradio_files()
        _name, _domain, link, qr, _picker, line = organiser.predict("en", study_id, name, "medicine",
                                                                     api_name="/study_invite")
        assert link.startswith(f"{url.rstrip('/')}/rate?invite=") and "shown only now" in line
        shown = base64.b64decode(re.search(r'<img src="data:image/png;base64,([^"]+)"', qr).group(1))
        assert shown.startswith(PNG)
        assert files_holding(before, shown, token_of(link)) == []  # the live link never touches the disk
        raters[name] = studio.rater_for_invitation(token_of(link)).rater_id
    state = organiser.predict("en", study_id, api_name="/study_open")[0]
    assert "State: open" in state

    first = [True] * 6 + [False] * 2 + [None] * 2
    second = [True] * 5 + [False] * 3 + [None] * 2
    for name, wishes in (("Dr. Li", first), ("Dr. Wong", second)):
        assert rate_all_with(studio, study_id, raters[name], wishes) == 10

    _state, *_buttons, table, agreement, _timer = organiser.predict("en", study_id, api_name="/study_dashboard")
    assert [row[:3] for row in table["data"]] == [["Dr. Li", "medicine", "10 / 10"],
                                                  ["Dr. Wong", "medicine", "10 / 10"]]
    assert "Cohen's kappa" in agreement and "adapter" not in agreement.lower()
    summary, _chart, groups = organiser.predict("en", study_id, api_name="/study_results")
    # 20 votes: 11 adapter wins, 5 losses, 4 ties -> 55% [34-74%]; sign test 11 vs 5: p = 0.2101
    assert "**20 votes.**" in summary
    assert f"run {run_id} better: 55% [34–74%]" in summary and "p = 0.2101" in summary  # the candidate, by name
    assert any(row[1] == "Dr. Li" and row[3].startswith("60%") for row in groups["data"])
    exported = organiser.predict("en", study_id, api_name="/study_export_jsonl")
    votes = [json.loads(line) for line in open(exported, encoding="utf-8")]
    assert len(votes) == 20 and {"adapter_outcome", "left_is_adapter"} <= set(votes[0])
    pairs = organiser.predict("en", study_id, api_name="/study_export_preferences")
    rows = [json.loads(line) for line in open(pairs, encoding="utf-8")]
    assert rows and all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)


def test_held_out_questions_a_checkpoint_and_generation_settings(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    run_id = finished_run(studio)
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    path, line = organiser.predict("en", run_id, api_name="/study_held_out")
    questions = studio.studies_questions(path)
    assert questions and all(q["reference"] for q in questions) and f"{len(questions)} held-out questions" in line
    study, _info = organiser.predict("en", "Held out", path, f"{run_id}@checkpoint-5", "logic", "en", False, 0,
                                     48, 0.5, 0.9, 1.0, 7, "Be kind.", api_name="/study_create")
    info = studio.studies.study(study["value"] if isinstance(study, dict) else study)
    assert info["run_dir"] == str(studio.runner.run_dir(run_id) / "checkpoints" / "checkpoint-5")
    assert info["gen_params"] == {"max_new_tokens": 48, "temperature": 0.5, "top_p": 0.9, "repetition_penalty": 1.0,
                                  "seed": 7, "system_prompt": "Be kind."}
    with pytest.raises(Exception, match="No finished run with an adapter"):
        organiser.predict("en", "Nope", path, f"{run_id}@checkpoint-99", "logic", "en", False, 0,
                          api_name="/study_create")
    # the baseline can be any adapter or checkpoint: here the run's checkpoint at step 2 against its final adapter
    study, _info = organiser.predict("en", "Two sides", path, run_id, "logic", "en", False, 0,
                                     baseline=f"{run_id}@checkpoint-2", api_name="/study_create")
    sides = studio.study(study["value"] if isinstance(study, dict) else study)["sides"]
    assert (sides["baseline"]["run_id"], sides["baseline"]["step"]) == (run_id, 2)
    assert (sides["candidate"]["run_id"], sides["candidate"]["step"]) == (run_id, None)
    with pytest.raises(Exception, match="Both sides are run"):
        organiser.predict("en", "Same", path, run_id, "logic", "en", False, 0, baseline=run_id,
                          api_name="/study_create")


def rate_all_with(studio: Studio, study_id: int, rater_id: int, wishes: list[bool | None]) -> int:
    """The rater judges every item as `wishes` says (True: the adapter is better, None: a tie), as the portal
    would: through the studio, seeing only the question and answers A and B."""
    votes = 0
    while (item := studio.next_item(study_id, rater_id)) is not None:
        for shown in (item.prompt, item.answer_a, item.answer_b):
            assert "adapter" not in shown.lower() and "smollm" not in shown.lower()
        wish = wishes[int(item.prompt.split("#")[-1])]
        adapter_is_a = item.answer_a.startswith("Thanks")
        choice = "tie" if wish is None else ("A" if wish == adapter_is_a else "B")
        studio.vote(study_id, rater_id, item.question_id, choice,
                    scores={"A": {"terminology": 4, "logic": 3}, "B": {"terminology": 2, "logic": 3}},
                    repeat=item.repeat)
        votes += 1
    return votes


def test_a_study_opens_only_when_generated_and_a_revoked_link_stops(serve, tmp_path):
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    studio.chat = FakeChat()
    questions = tmp_path / "q.csv"
    questions.write_text("question\nWhere is my parcel?\n", encoding="utf-8")
    study_id = studio.create_study("s", questions, finished_run(studio))["id"]
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    with pytest.raises(Exception, match="some answers are still to be generated"):
        organiser.predict("en", study_id, api_name="/study_open")
    assert studio.study(study_id)["state"] == "draft"
    organiser.predict("en", study_id, api_name="/study_generate")
    assert "State: open" in organiser.predict("en", study_id, api_name="/study_open")[0]
    *_boxes, link, _qr, picker, _line = organiser.predict("en", study_id, "Eve", "", api_name="/study_invite")
    rater_id = studio.rater_for_invitation(token_of(link)).rater_id
    assert (picker["value"] if isinstance(picker, dict) else picker) == rater_id
    emptied, _qr, _picker, line = organiser.predict("en", study_id, rater_id, api_name="/study_revoke")
    assert emptied == "" and "Eve" in line and "no longer works" in line
    with pytest.raises(EngineError) as refused:
        studio.rater_for_invitation(token_of(link))
    assert refused.value.code == "invite_unknown"
    renewed, *_rest = organiser.predict("en", study_id, rater_id, api_name="/study_renew")
    assert studio.rater_for_invitation(token_of(renewed)).rater_id == rater_id
    assert "State: paused" in organiser.predict("en", study_id, api_name="/study_pause")[0]
    assert "**状态：已结束**" in organiser.predict("zh", study_id, api_name="/study_close")[0]


def test_cli_lists_and_exports_a_study(tmp_path):
    import subprocess
    import sys

    from engine.study.store import StudyStore

    store = StudyStore(tmp_path / "studies.db")
    study_id = store.create_study("cli", [{"prompt": "q1"}, {"prompt": "q2"}], tmp_path, seed=1)
    for question in store.questions(study_id):
        store.store_answers(question["id"], "base answer", "adapter answer")
    rater = store.invite_rater(study_id, "Ann").rater_id
    while (item := store.next_item(study_id, rater)) is not None:
        store.vote(study_id, rater, item.question_id, "A" if item.answer_a == "adapter answer" else "B")
    root = Path(__file__).resolve().parent.parent

    def app(*args):
        return subprocess.run([sys.executable, "app.py", "study", *args, "--db", str(tmp_path / "studies.db")],
                              cwd=root, capture_output=True, text=True, timeout=120)

    assert "cli" in app("list").stdout
    out = tmp_path / "pairs.jsonl"
    result = app("export", "--study", str(study_id), "--format", "preferences", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(r["chosen"] == "adapter answer" for r in rows)
    missing = subprocess.run([sys.executable, "app.py", "study", "list", "--db", str(tmp_path / "none.db")],
                             cwd=root, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_real_model_study_end_to_end(serve, run_copy):
    """The session's real run; its study pre-generated by the real model (one load serves both sides);
    two invited raters judge it; the unblinded counts add up."""
    studio = Studio(run_copy.parent, data_root=run_copy.parent.parent / "data")
    reference = "Thanks for reaching out to Orchard Lane! Parcels ship within 24 hours."
    questions = [{"prompt": f"Question #{i}: where is my parcel {i}?", "reference": reference} for i in range(3)]
    study_id = studio.studies.create_study("real", questions, run_copy,
                                           gen_params={"max_new_tokens": 32}, seed=3)
    url, _app = serve(studio)
    organiser = Client(url, verbose=False)
    assert "3 answer pair(s) generated" in organiser.predict("en", study_id, api_name="/study_generate")
    assert studio.chat.loads == 1
    for name in ("Ann", "Bo"):
        link = organiser.predict("en", study_id, name, "", api_name="/study_invite")[2]
        rater_id = studio.rater_for_invitation(token_of(link)).rater_id
        while (item := studio.next_item(study_id, rater_id)) is not None:
            assert item.answer_a
            studio.vote(study_id, rater_id, item.question_id, "A", repeat=item.repeat)
    summary, _chart, _groups = organiser.predict("en", study_id, api_name="/study_results")
    assert "**6 votes.**" in summary
    automatic = organiser.predict("en", study_id, api_name="/study_metrics")
    assert automatic.count("ROUGE-L") == 2 and automatic.count("perplexity") == 2


# the handlers called directly, with a fake studio ---------------------------------------------------
class FakeStudies:
    """Stands in for `Studio` on the study tab: one draft study with answers to generate, whose raters are
    invited with made-up tokens; every change is recorded."""

    def __init__(self, pending: bool = False) -> None:
        self.pending, self.state, self.changes = pending, "draft", []
        self.raters: list[RaterProgress] = []

    def study(self, study_id):
        return {"id": study_id, "criteria": ["logic", "format"], "state": self.state, "votes": 3}

    def generation_pending(self, study_id):
        return self.pending

    def set_study_state(self, study_id, state):
        if state == "open" and self.pending:
            raise EngineError("study_open_pending", {"study_id": study_id})
        self.state = state
        self.changes.append(("state", study_id, state))

    def invite_rater(self, study_id, name, domain=None):
        if not name:
            raise EngineError("study_rater_name_empty")
        rater_id = len(self.raters) + 1
        self.raters.append(RaterProgress(rater_id, name, domain, 0, 4, None, False))
        return Invitation(study_id, rater_id, name, domain, f"token{rater_id}")

    def renew_invitation(self, study_id, rater_id):
        rater = self.raters[rater_id - 1]
        self.raters[rater_id - 1] = dataclasses.replace(rater, revoked=False)
        self.changes.append(("renew", study_id, rater_id))
        return Invitation(study_id, rater_id, rater.name, rater.domain, f"renewed{rater_id}")

    def revoke_invitation(self, study_id, rater_id):
        self.raters[rater_id - 1] = dataclasses.replace(self.raters[rater_id - 1], revoked=True)
        self.changes.append(("revoke", study_id, rater_id))

    def rater_progress(self, study_id):
        return list(self.raters)

    def study_statistics(self, study_id):
        rows = [{"question_id": q, "rater_id": r, "rater": name, "adapter_outcome": o, "domain": "law",
                 "repeat": False, "adapter_scores": {}, "base_scores": {}, "flagged_identity": False}
                for q, o in ((1, "win"), (2, "win"), (3, "loss")) for r, name in ((1, "Ann"), (2, "Bo"))]
        return summarize(rows if len(self.raters) > 1 else rows[::2])

    def study_reference_scores(self, study_id):
        return {side: {"rouge_l": None, "bleu": None, "n": 0} for side in ("base", "adapter")}

    def study_perplexity(self, study_id):
        raise EngineError("run_not_found", {"path": "runs/gone"}, hint="hint_pick_run")

    def create_study(self, *args, **kwargs):
        raise EngineError("study_name_empty")

    def export_study(self, study_id, kind):
        return Path(f"/tmp/study-{study_id}.{kind}")


def view_of(view_class, **lists):
    """A view whose components are their own field names (handlers' dicts are then keyed by names)."""
    return view_class(**{f.name: lists.get(f.name, f.name) for f in dataclasses.fields(view_class)})


def test_unblind_results_returns_summary_chart_and_table_keyed_by_the_view():
    view = view_of(ResultsView)
    shown = study_results.unblind_results(FakeStudies(), view, "en", 1)
    assert set(shown) == {"summary", "chart", "groups"}
    assert "**3 votes.**" in shown["summary"] and "67%" in shown["summary"]
    assert shown["chart"].data[0].y[0] == pytest.approx(2 / 3)
    assert list(shown["groups"].iloc[0][:3]) == [t("group_kind_domain", "en"), "law", 3]


def test_automatic_metrics_words_a_perplexity_that_cannot_be_measured():
    shown = study_results.automatic_metrics(FakeStudies(), view_of(ResultsView), "zh", 1)
    lines = shown["metrics"].split("\n\n")
    assert lines[0] == t("metrics_no_reference", "zh") and "runs/gone" in lines[1] and len(lines) == 2


def test_create_study_words_an_engine_error_and_export_returns_the_file():
    view = view_of(SetupView)
    with pytest.raises(gr.Error) as refused:
        study_organise.create_study(FakeStudies(), view, "zh", "", "q.csv", "run", "logic", "zh", False, 0)
    assert refused.value.message == render_error(EngineError("study_name_empty"), "zh")
    exported = study_results.export_study(FakeStudies(), view_of(ResultsView), "jsonl", "en", 4)
    assert exported == {"exported": str(Path("/tmp/study-4.jsonl"))}
    with pytest.raises(gr.Error):
        study_results.export_study(FakeStudies(), view_of(ResultsView), "csv", "en", None)
