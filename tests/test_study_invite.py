"""The organiser's raters panel and live dashboard: their handlers called directly with a fake studio (links,
QR codes, renew and revoke, the loopback note, open / pause / close, the raters' table and agreement)."""
from __future__ import annotations

import base64
import dataclasses
import re
import struct
from types import SimpleNamespace

import gradio as gr
import pytest
import segno

from engine.errors import EngineError
from engine.locales import render_error
from tests.test_study_tab import PNG, FakeStudies, view_of
from ui import study_dashboard, study_invite
from ui.i18n import t
from ui.study_dashboard import STATE_BUTTONS, DashboardView
from ui.study_invite import InviteView


def request_from(host: str, scheme: str = "http") -> SimpleNamespace:
    """What a handler reads of a `gr.Request`: the URL's scheme and the Host header."""
    return SimpleNamespace(url=SimpleNamespace(scheme=scheme), headers={"host": host})


def qr_uris(shown_qr: str) -> list[str]:
    """The `data:` URIs in the QR code's HTML: the image's source, then the download link's target."""
    return re.findall(r'(?:src|href)="(data:image/png;base64,[^"]+)"', shown_qr)


def qr_image(shown_qr: str) -> bytes:
    """The PNG the QR code's HTML shows inline."""
    return base64.b64decode(qr_uris(shown_qr)[0].split(",", 1)[1])


def dashboard_view() -> DashboardView:
    return view_of(DashboardView, buttons=list(STATE_BUTTONS))


def test_invite_shows_the_link_once_with_a_qr_code_of_it():
    studio, view = FakeStudies(), view_of(InviteView)
    shown = study_invite.invite_rater(studio, view, None, "en", 1, " Dr. Li ", " cardiology ",
                                      request_from("192.168.1.20:7860"))
    link = "http://192.168.1.20:7860/rate?invite=token1"
    assert shown["link"] == link and shown["name"] == "" and shown["domain"] == ""
    assert studio.raters[0].name == "Dr. Li" and studio.raters[0].domain == "cardiology"
    assert shown["raters"].value == 1 and shown["raters"].choices == [("Dr. Li (cardiology)", 1)]
    assert t("invite_shown_once", "en") in shown["info"] and t("invite_loopback", "en") not in shown["info"]
    png = study_invite.qr_png(link)
    width, height = struct.unpack(">II", png[16:24])  # the PNG header's size
    expected, _ = segno.make(link, error="m").symbol_size(scale=study_invite.QR_SCALE)
    assert png.startswith(PNG) and width == height == expected and 150 <= width <= 600
    assert qr_image(shown["qr"]) == png
    assert study_invite.qr_png(link.replace("token1", "token2")) != png


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_qr_code_is_inline_html_with_a_data_uri_download_in_the_page_language(lang):
    link = "https://study.example.org/rate?invite=token1"
    shown = study_invite.qr_html(link, lang)
    image, download = qr_uris(shown)
    assert image == download and qr_image(shown) == study_invite.qr_png(link)
    assert f'alt="{t("invite_qr", lang)}"' in shown and t("invite_qr_download", lang) in shown
    assert f'download="{study_invite.QR_FILE_NAME}"' in shown and t("invite_qr_download", "en") != t(
        "invite_qr_download", "zh")
    assert "token1" not in shown  # the link itself is only in the image, never in a file name or a URL


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "studio.localhost"])
def test_a_loopback_host_gets_a_worded_note_about_other_computers(host):
    for lang in ("en", "zh"):
        shown = study_invite.invite_rater(FakeStudies(), view_of(InviteView), None, lang, 1, "Ann", "",
                                          request_from(host, "https"))
        assert shown["link"] == f"https://{host}/rate?invite=token1"
        assert t("invite_loopback", lang) in shown["info"]
        assert "--host 0.0.0.0" in shown["info"] and "--public-url" in shown["info"]


def test_the_public_url_wins_over_the_request_host():
    shown = study_invite.invite_rater(FakeStudies(), view_of(InviteView), "https://study.example.org:8443/", "en", 1,
                                      "Ann", "", request_from("127.0.0.1:7860"))
    assert shown["link"] == "https://study.example.org:8443/rate?invite=token1"
    assert t("invite_loopback", "en") not in shown["info"]


def test_invite_errors_are_worded_and_need_a_study():
    studio, view = FakeStudies(), view_of(InviteView)
    with pytest.raises(gr.Error) as empty:
        study_invite.invite_rater(studio, view, None, "zh", 1, "  ", "", request_from("h"))
    assert empty.value.message == render_error(EngineError("study_rater_name_empty"), "zh")
    with pytest.raises(gr.Error) as no_study:
        study_invite.invite_rater(studio, view, None, "en", None, "Ann", "", request_from("h"))
    assert no_study.value.message == t("study_none", "en") and studio.raters == []


def test_renew_and_revoke_a_rater_link():
    studio, view = FakeStudies(), view_of(InviteView)
    study_invite.invite_rater(studio, view, None, "en", 1, "Ann", "law", request_from("10.0.0.2:7860"))
    for handler, args in ((study_invite.renew_link, (None, "en", 1, None, request_from("h"))),
                          (study_invite.revoke_link, ("zh", 1, ""))):
        with pytest.raises(gr.Error) as unpicked:
            handler(studio, view, *args)
        assert unpicked.value.message in (t("invite_pick_rater", "en"), t("invite_pick_rater", "zh"))
    revoked = study_invite.revoke_link(studio, view, "en", 1, 1)
    assert revoked["link"] == "" and revoked["qr"] == "" and studio.changes == [("revoke", 1, 1)]
    assert revoked["info"] == t("invite_revoked", "en", name="Ann (law)")
    assert revoked["raters"].choices == [("Ann (law) ✕", 1)]
    renewed = study_invite.renew_link(studio, view, None, "en", 1, 1, request_from("10.0.0.2:7860"))
    assert renewed["link"] == "http://10.0.0.2:7860/rate?invite=renewed1"
    assert qr_image(renewed["qr"]) == study_invite.qr_png(renewed["link"])
    assert renewed["info"].startswith(t("invite_renewed", "en", name="Ann (law)"))
    assert renewed["raters"].choices == [("Ann (law)", 1)] and studio.changes[-1] == ("renew", 1, 1)
    picked = study_invite.show_raters(studio, view, "en", 1)
    assert picked["raters"].choices == [("Ann (law)", 1)] and picked["link"] == "" and picked["qr"] == ""
    assert study_invite.show_raters(studio, view, "en", None)["raters"].choices == []


def test_open_is_refused_in_words_while_answers_are_pending():
    studio, view = FakeStudies(pending=True), dashboard_view()
    for lang in ("en", "zh"):
        with pytest.raises(gr.Error) as refused:
            study_dashboard.set_state(studio, view, "open", lang, 1)
        assert refused.value.message == render_error(EngineError("study_open_pending", {"study_id": 1}), lang)
    shown = study_dashboard.show_dashboard(studio, view, "en", 1)
    assert t("dashboard_generate_first", "en") in shown["state"] and studio.state == "draft"
    assert [shown[target].interactive for target in STATE_BUTTONS] == [True, False, True]


def test_pause_and_close_change_the_state_and_the_buttons():
    studio, view = FakeStudies(), dashboard_view()
    opened = study_dashboard.set_state(studio, view, "open", "en", 1)
    assert opened["state"].startswith(t("dashboard_state", "en", state=t("study_state_open", "en"), votes=3))
    assert [opened[target].interactive for target in STATE_BUTTONS] == [False, True, True]
    paused = study_dashboard.set_state(studio, view, "paused", "zh", 1)
    assert t("dashboard_state_paused", "zh") in paused["state"] and "已暂停" in paused["state"]
    assert [paused[target].interactive for target in STATE_BUTTONS] == [True, False, True]
    closed = study_dashboard.set_state(studio, view, "closed", "en", 1)
    assert [closed[target].interactive for target in STATE_BUTTONS] == [True, False, False]
    assert studio.changes == [("state", 1, "open"), ("state", 1, "paused"), ("state", 1, "closed")]
    with pytest.raises(gr.Error):
        study_dashboard.set_state(studio, view, "open", "en", None)


def test_the_dashboard_lists_each_rater_and_the_agreement_so_far():
    studio, view = FakeStudies(), dashboard_view()
    idle = study_dashboard.show_dashboard(studio, view, "en", None)
    assert idle["timer"].active is False and idle["raters"].empty and idle["state"] == t("study_none", "en")
    studio.invite_rater(1, "Ann", "law")
    alone = study_dashboard.show_dashboard(studio, view, "en", 1)
    assert alone["agreement"] == t("dashboard_agreement_too_little", "en") and alone["timer"].active is True
    studio.invite_rater(1, "Bo")
    studio.raters[0] = dataclasses.replace(studio.raters[0], done=3, last_active="2026-03-01T09:30:05+00:00")
    studio.revoke_invitation(1, 2)
    shown = study_dashboard.show_dashboard(studio, view, "zh", 1)
    assert list(shown["raters"].columns) == [t(key, "zh") for key in
                                             ("col_rater", "col_domain", "col_done", "col_last_active", "col_revoked")]
    assert shown["raters"].values.tolist() == [["Ann", "law", "3 / 4", "2026-03-01 09:30:05 UTC", ""],
                                               ["Bo", "-", "0 / 4", "-", "✓"]]
    assert shown["agreement"].startswith("所有评审的一致性") and "Ann" in shown["agreement"]
    assert "%" not in shown["agreement"] + shown["state"]  # no unblinded outcome on the dashboard
