"""The rater portal: its handlers with a fake studio (every screen, vote, skip, back, language), then with a real
`Studio` (two raters on their own links, a revoked link, the page's only API endpoints, a vote through the
served portal with gradio_client), and nothing on it that names a model, a run or an adapter."""
from __future__ import annotations

import dataclasses
import json
import urllib.request
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client

from engine import MAX_COMMENT, EngineError, RaterPass, RaterProgress, RatingItem
from engine.studio import Studio
from tests.conftest import FakeJob
from tests.test_study_tab import FakeChat, finished_run
from ui import portal_handlers as handlers
from ui.i18n import Texts, t
from ui.portal import API_NAMES, PORTAL_PATH, build_portal
from ui.portal_handlers import PortalView
from ui.study_organise import MAX_CRITERIA

NO_SCORES = [3] * (2 * MAX_CRITERIA)


class FakeStudio:
    """One rater ("Dr. Li", token "good") of a study with two items; records votes (latest per item, in the order
    of their first vote) and skips; refuses rating unless the study is open, like the engine."""

    def __init__(self, state: str = "open", lang: str = "en", criteria: tuple[str, ...] = ("logic",)) -> None:
        self.state, self.lang, self.revoked = state, lang, False
        self.items = [RatingItem(study_id=1, question_id=q, prompt=f"**Question {q}**", answer_a=f"A{q}",
                                 answer_b=f"B{q}", criteria=criteria, done=0, total=2,
                                 reference="Ref 1" if q == 1 else None) for q in (1, 2)]
        self.votes: dict[tuple[int, bool], tuple] = {}
        self.skips: list[int] = []

    def rater_for_invitation(self, token: str) -> RaterPass:
        if token != "good" or self.revoked:
            raise EngineError("invite_unknown")
        return RaterPass(study_id=1, rater_id=7, name="Dr. Li", study_name="Support", lang=self.lang, state=self.state)

    def _shown(self, item: RatingItem, given: dict | None = None) -> RatingItem:
        return dataclasses.replace(item, done=len(self.votes), given=given)

    def next_item(self, study_id: int, rater_id: int) -> RatingItem | None:
        waiting = [i for i in self.items if (i.question_id, False) not in self.votes]
        waiting.sort(key=lambda i: i.question_id in self.skips)
        return self._shown(waiting[0]) if waiting else None

    def previous_item(self, study_id: int, rater_id: int, before=None) -> RatingItem | None:
        judged = list(self.votes)
        earlier = judged[:judged.index(tuple(before))] if before is not None and tuple(before) in judged else judged
        if not earlier:
            return None
        choice, scores, comment = self.votes[earlier[-1]]
        item = next(i for i in self.items if i.question_id == earlier[-1][0])
        return self._shown(item, {"choice": choice, "scores": scores, "comment": comment})

    def _check_open(self) -> None:
        if self.state != "open":
            raise EngineError({"draft": "study_not_open"}.get(self.state, f"study_{self.state}"), {"name": "Support"})

    def vote(self, study_id, rater_id, question_id, choice, scores=None, comment="", repeat=False) -> int:
        self._check_open()
        self.votes[(question_id, repeat)] = (choice, scores, comment)
        return len(self.votes)

    def skip_item(self, study_id, rater_id, question_id, repeat=False) -> None:
        self._check_open()
        self.skips.append(question_id)

    def rater_progress(self, study_id: int) -> list[RaterProgress]:
        return [RaterProgress(rater_id=7, name="Dr. Li", domain=None, done=len(self.votes), total=2,
                              last_active=None, revoked=False)]


def fake_view() -> PortalView:
    """A view whose components are their own field names, with one worded button in `texts`."""
    texts = Texts("en")
    texts.add(gr.Button(), value="portal_submit")
    names = {f.name: f.name for f in dataclasses.fields(PortalView)}
    return PortalView(**{**names, "texts": texts, "scores_a": [f"a{i}" for i in range(MAX_CRITERIA)],
                         "scores_b": [f"b{i}" for i in range(MAX_CRITERIA)]})


def request(invite: str | None = None) -> SimpleNamespace:
    """A stand-in for gr.Request: the page's query string."""
    return SimpleNamespace(query_params={"invite": invite} if invite is not None else {})


def begin(studio, view, token: str = "good", lang: str = "en") -> dict:
    return handlers.rate_begin(studio, view, lang, "", request(token))


def vote(studio, view, shown: dict, choice: str | None = "A", comment: str = "", scores=NO_SCORES, lang: str = "en",
         token: str = "good") -> dict:
    return handlers.rate_vote(studio, view, lang, token, shown["screen"], choice, comment, *scores)


def value(update) -> object:
    return update["value"] if isinstance(update, dict) else update


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_a_missing_or_bad_link_shows_one_worded_screen_and_nothing_else(token):
    shown = begin(FakeStudio(), view := fake_view(), token)
    assert value(shown["notice"]) == t("invite_unknown", "en") and "organiser" in value(shown["notice"])
    assert shown["notice"]["visible"] and not shown["item"]["visible"] and not shown["back"]["visible"]
    assert not shown["header"]["visible"] and shown["token"] is None
    assert shown["screen"].kind == "invalid"
    assert value(shown[view.texts.components[0]]) == "Submit (Enter)"


@pytest.mark.parametrize(("state", "words"), [("draft", "has not started yet"), ("paused", "answers so far are kept"),
                                              ("closed", "Thank you")])
def test_a_study_that_is_not_open_says_so_instead_of_an_item(state, words):
    shown = begin(FakeStudio(state=state), fake_view())
    assert words in value(shown["notice"]) and "Support" in value(shown["notice"])
    assert not shown["item"]["visible"] and not shown["back"]["visible"]
    assert "Support" in value(shown["header"]) and "Dr. Li" in value(shown["header"])


def test_begin_shows_the_first_item_in_the_studys_language():
    view = fake_view()
    shown = begin(FakeStudio(lang="zh"), view)
    assert shown["token"] == "good" and value(shown["language"]) == "zh"
    assert value(shown[view.texts.components[0]]) == "提交（回车）"
    assert shown["item"]["visible"] and not shown["notice"]["visible"]
    assert value(shown["question"]) == "**Question 1**" and value(shown["answer_a"]) == "A1"
    assert value(shown["answer_b"]) == "B1"
    assert shown["reference"]["visible"] and value(shown["reference_text"]) == "Ref 1"
    assert "已评 0 / 2 题" in value(shown["progress"]) and '<progress value="0" max="2">' in value(shown["progress"])
    assert not shown["saved"]["visible"] and not shown["back"]["visible"]
    assert shown["a0"]["visible"] and shown["a0"]["label"] == "logic" and not shown["a1"]["visible"]
    assert value(shown["choice"]) is None and value(shown["comment"]) == ""


def test_a_vote_is_saved_and_the_next_item_follows_with_a_saved_line():
    studio, view = FakeStudio(), fake_view()
    first = begin(studio, view)
    scores = [4, 3, 3, 3, 3, 2, 3, 3, 3, 3]
    second = vote(studio, view, first, "B", " clear ", scores)
    assert studio.votes == {(1, False): ("B", {"A": {"logic": 4}, "B": {"logic": 2}}, "clear")}
    assert value(second["saved"]) == "Saved ✓ your answer to question 1." and second["saved"]["visible"]
    assert value(second["question"]) == "**Question 2**" and "Answered 1 / 2" in value(second["progress"])
    assert not second["reference"]["visible"] and second["back"]["visible"]
    assert value(second["choice"]) is None and value(second["a0"]) == 3
    done = vote(studio, view, second, "tie")
    assert value(done["notice"]) == t("portal_done", "en") and not done["item"]["visible"]
    assert "Answered 2 / 2" in value(done["progress"]) and done["back"]["visible"]
    assert value(done["saved"]) == "Saved ✓ your answer to question 2."


def test_a_vote_needs_a_verdict_and_an_item_on_screen():
    studio, view = FakeStudio(), fake_view()
    shown = begin(studio, view)
    with pytest.raises(gr.Error, match="Choose which answer is better first"):
        vote(studio, view, shown, choice=None)
    with pytest.raises(gr.Error, match="请先选择"):
        vote(studio, view, shown, choice="maybe", lang="zh")
    with pytest.raises(gr.Error, match="no question on screen"):
        handlers.rate_vote(studio, view, "en", "good", None, "A", "", *NO_SCORES)
    assert studio.votes == {}


def test_back_shows_the_previous_answer_filled_in_and_a_changed_vote_moves_on():
    studio, view = FakeStudio(), fake_view()
    second = vote(studio, view, begin(studio, view), "B", "first try", [5, 3, 3, 3, 3, 1, 3, 3, 3, 3])
    back = handlers.rate_back(studio, view, "en", "good", second["screen"])
    assert value(back["question"]) == "**Question 1**" and value(back["choice"]) == "B"
    assert value(back["a0"]) == 5 and value(back["b0"]) == 1 and value(back["comment"]) == "first try"
    assert value(back["saved"]) == t("portal_changing", "en", number=1) and not back["back"]["visible"]
    with pytest.raises(gr.Error, match="no earlier answer"):
        handlers.rate_back(studio, view, "en", "good", back["screen"])
    changed = vote(studio, view, back, "A", "", [2, 3, 3, 3, 3, 2, 3, 3, 3, 3])
    assert studio.votes[(1, False)] == ("A", {"A": {"logic": 2}, "B": {"logic": 2}}, "")
    assert value(changed["question"]) == "**Question 2**" and value(changed["saved"]) == t("portal_saved", "en",
                                                                                           number=1)


def test_back_from_the_thank_you_screen_and_skip_keeps_an_earlier_answer():
    studio, view = FakeStudio(), fake_view()
    done = vote(studio, view, vote(studio, view, begin(studio, view), "A"), "B")
    back = handlers.rate_back(studio, view, "en", "good", done["screen"])
    assert value(back["question"]) == "**Question 2**" and value(back["choice"]) == "B"
    assert back["screen"].position == 2 and back["back"]["visible"]
    kept = handlers.rate_skip(studio, view, "en", "good", back["screen"])
    assert studio.skips == [] and studio.votes[(2, False)][0] == "B"
    assert value(kept["notice"]) == t("portal_done", "en")


def test_skip_puts_a_new_item_back_and_shows_the_next():
    studio, view = FakeStudio(), fake_view()
    skipped = handlers.rate_skip(studio, view, "en", "good", begin(studio, view)["screen"])
    assert studio.skips == [1] and value(skipped["question"]) == "**Question 2**"
    assert not skipped["saved"]["visible"] and not skipped["back"]["visible"]


def test_the_language_switch_rewords_the_page_and_keeps_what_the_rater_entered():
    studio, view = FakeStudio(), fake_view()
    shown = vote(studio, view, begin(studio, view), "A")
    switched = handlers.rate_language(studio, view, "zh", "good", shown["screen"])
    assert value(switched[view.texts.components[0]]) == "提交（回车）"
    assert "已评 1 / 2 题" in value(switched["progress"]) and value(switched["saved"]) == "已保存 ✓ 第 1 题的回答。"
    assert "Dr. Li，您好" in value(switched["header"])
    assert not {"choice", "comment", "a0", "question", "answer_a", "screen"} & set(switched)
    before_begin = handlers.rate_language(studio, view, "zh", "good", None)
    assert set(before_begin) == set(view.texts.components)


class PausedMidVote(FakeStudio):
    """A study the organiser pauses just as the rater's vote or skip arrives: the engine refuses it."""

    def vote(self, *args, **kwargs) -> int:
        self.state = "paused"
        return super().vote(*args, **kwargs)

    def skip_item(self, *args, **kwargs) -> None:
        self.state = "paused"
        super().skip_item(*args, **kwargs)


def assert_notice(shown: dict, state: str, words: str) -> None:
    """`shown` is the notice screen of a study in `state`, worded with `words`, and offers nothing to answer."""
    assert shown["screen"].kind == state and words in value(shown["notice"]) and shown["notice"]["visible"]
    assert not shown["item"]["visible"] and not shown["back"]["visible"] and not shown["saved"]["visible"]
    assert "Support" in value(shown["notice"]) and "Dr. Li" in value(shown["header"])


def test_a_study_paused_or_closed_since_the_page_opened_shows_its_notice_in_the_pages_language():
    studio, view = FakeStudio(), fake_view()
    shown = begin(studio, view)
    studio.state = "paused"
    assert_notice(vote(studio, view, shown, "A", "kept?", lang="zh"), "paused", "暂停")
    studio.state = "closed"
    assert_notice(handlers.rate_skip(studio, view, "en", "good", shown["screen"]), "closed", "is closed")
    assert studio.votes == {} and studio.skips == []


def test_a_study_paused_just_as_the_vote_arrives_shows_its_notice_too():
    studio, view = PausedMidVote(), fake_view()
    shown = begin(studio, view)
    assert_notice(vote(studio, view, shown, "A"), "paused", "answers so far are kept")
    studio.state = "open"
    assert_notice(handlers.rate_skip(studio, view, "zh", "good", shown["screen"]), "paused", "暂停")
    assert studio.votes == {} and studio.skips == []


def test_back_on_a_study_paused_since_shows_its_notice_not_an_answer_to_change():
    studio, view = FakeStudio(), fake_view()
    done = vote(studio, view, vote(studio, view, begin(studio, view), "A"), "B")
    studio.state = "paused"
    back = handlers.rate_back(studio, view, "en", "good", done["screen"])
    assert_notice(back, "paused", "answers so far are kept")
    assert value(back["saved"]) != t("portal_changing", "en", number=2)
    studio.state = "draft"
    assert_notice(handlers.rate_back(studio, view, "en", "good", done["screen"]), "draft", "has not started yet")


def test_a_revoked_link_stops_at_once():
    studio, view = FakeStudio(), fake_view()
    shown = begin(studio, view)
    studio.revoked = True
    with pytest.raises(gr.Error, match="not valid"):
        vote(studio, view, shown)
    with pytest.raises(gr.Error, match="not valid"):
        handlers.rate_back(studio, view, "en", "good", shown["screen"])
    switched = handlers.rate_language(studio, view, "en", "good", shown["screen"])
    assert switched["screen"].kind == "invalid" and not switched["item"]["visible"]
    assert studio.votes == {}


def test_an_api_client_may_pass_the_token_itself():
    shown = handlers.rate_begin(FakeStudio(), fake_view(), "en", " good ", None)
    assert shown["token"] == "good" and shown["item"]["visible"]


# --- with a real Studio -------------------------------------------------------------------------------------------

@pytest.fixture
def study(tmp_path):
    """A generated, open study of three questions with one criterion, and its run id."""
    studio = Studio(tmp_path / "runs", job_factory=FakeJob, data_root=tmp_path / "data")
    run_id = finished_run(studio)
    questions = [{"prompt": f"Where is parcel #{i}?", "reference": f"In depot {i}."} for i in range(3)]
    study_id = studio.studies.create_study("Parcels", questions, studio.runner.run_dir(run_id), criteria=["logic"],
                                           lang="en", show_reference=True)
    studio.studies.generate(study_id, FakeChat())
    return studio, study_id, run_id


def test_two_raters_on_their_own_links_see_their_own_progress_and_resume(study):
    studio, study_id, _run_id = study
    view = fake_view()
    li, wong = (studio.invite_rater(study_id, name) for name in ("Dr. Li", "Dr. Wong"))
    shown = vote(studio, view, vote(studio, view, begin(studio, view, li.token), token=li.token), token=li.token)
    other = vote(studio, view, begin(studio, view, wong.token), "B", token=wong.token)
    assert "Answered 2 / 3" in value(shown["progress"]) and "Answered 1 / 3" in value(other["progress"])
    again = begin(studio, view, li.token)  # the same link later: resumes where Dr. Li stopped
    assert "Answered 2 / 3" in value(again["progress"]) and "Dr. Li" in value(again["header"])
    assert value(again["reference_text"]).startswith("In depot")
    assert [(p.name, p.done) for p in studio.rater_progress(study_id)] == [("Dr. Li", 2), ("Dr. Wong", 1)]
    back = handlers.rate_back(studio, view, "en", li.token, again["screen"])
    assert value(back["choice"]) == "A" and value(back["a0"]) == 3


def test_a_revoked_link_is_refused_on_the_next_vote(study):
    studio, study_id, _run_id = study
    view = fake_view()
    invitation = studio.invite_rater(study_id, "Dr. Li")
    shown = begin(studio, view, invitation.token)
    studio.revoke_invitation(study_id, invitation.rater_id)
    with pytest.raises(gr.Error, match="not valid"):
        vote(studio, view, shown, token=invitation.token)
    assert studio.studies.results(study_id) == []
    assert begin(studio, view, invitation.token)["screen"].kind == "invalid"


def test_a_fractional_score_or_an_overlong_comment_is_refused_worded_and_nothing_is_stored(study):
    studio, study_id, _run_id = study
    view = fake_view()
    invitation = studio.invite_rater(study_id, "Dr. Li")
    shown = begin(studio, view, invitation.token)
    with pytest.raises(gr.Error, match="must be a whole number from 1 to 5, got 2.5"):
        vote(studio, view, shown, scores=[2.5] + NO_SCORES[1:], token=invitation.token)
    with pytest.raises(gr.Error, match="不超过 4000 个字符"):
        vote(studio, view, shown, comment="字" * (MAX_COMMENT + 1), lang="zh", token=invitation.token)
    assert studio.studies.results(study_id) == []
    vote(studio, view, shown, comment=f" {'x' * MAX_COMMENT} ", scores=[2.0] + NO_SCORES[1:], token=invitation.token)
    [stored] = studio.studies.results(study_id)
    side_a = "adapter_scores" if stored["adapter_shown_as"] == "A" else "base_scores"
    assert stored["comment"] == "x" * MAX_COMMENT and stored[side_a] == {"logic": 2}


def test_a_study_the_organiser_pauses_shows_its_notice_on_the_next_vote(study):
    studio, study_id, _run_id = study
    view = fake_view()
    invitation = studio.invite_rater(study_id, "Dr. Li")
    shown = begin(studio, view, invitation.token)
    studio.set_study_state(study_id, "paused")
    paused = vote(studio, view, shown, token=invitation.token)
    assert paused["screen"].kind == "paused" and "Parcels" in value(paused["notice"])
    assert not paused["item"]["visible"] and studio.studies.results(study_id) == []


def test_nothing_shown_names_a_model_a_run_or_an_adapter(study):
    studio, study_id, run_id = study
    view = fake_view()
    invitation = studio.invite_rater(study_id, "Dr. Li")
    shown = [begin(studio, view, invitation.token)]
    shown.append(vote(studio, view, shown[0], token=invitation.token))
    shown.append(handlers.rate_back(studio, view, "en", invitation.token, shown[1]["screen"]))
    text = repr([{key: update for key, update in part.items() if key != "screen"} for part in shown])
    model = studio.default_config().model_name_or_path
    assert run_id not in text and model not in text and "adapter" not in text.lower()
    assert "Where is parcel" in text  # the check looks at what is shown


def test_the_portals_only_python_events_are_its_five_named_endpoints(study):
    demo = build_portal(study[0], lang="zh")
    named = [fn.api_name for fn in demo.fns.values()]
    assert sorted(named) == sorted(API_NAMES)
    assert all(fn.fn is not None for fn in demo.fns.values())
    [comment] = [c for c in demo.config["components"] if c["props"].get("elem_id") == "portal-comment"]
    assert comment["props"]["max_length"] == MAX_COMMENT
    assert PORTAL_PATH == "/rate"


def test_a_vote_through_the_served_portal(study, serve):
    studio, study_id, run_id = study
    invitation = studio.invite_rater(study_id, "Dr. Li")
    url, _app = serve(studio)
    config = urllib.request.urlopen(url + "rate/config", timeout=30).read().decode("utf-8")
    assert run_id not in config and "adapter" not in config.lower()
    client = Client(url + "rate/", verbose=False)
    assert sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == \
        sorted(f"/{name}" for name in API_NAMES)
    began = client.predict("en", invitation.token, api_name="/rate_begin")
    assert any("Answered 0 / 3" in str(part) for part in began)
    voted = client.predict("en", "B", "fine", *NO_SCORES, api_name="/rate_vote")
    assert any("Saved ✓ your answer to question 1." in str(part) for part in voted)
    assert run_id not in json.dumps(voted, default=str)
    votes = studio.studies.results(study_id)
    assert [(v["rater"], v["choice"], v["comment"]) for v in votes] == [("Dr. Li", "B", "fine")]
