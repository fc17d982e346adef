"""The blind study's raters and invitations, for the organiser: invite a rater (name, optional domain) and show
their link once, as text to copy and as a QR code; renew or revoke a rater's link.

The QR code travels inside the page as a `data:` URI (the image and its download link): a live link is never
written to a file, so none is left in gradio's cache after a revoke or a crash.

The link is `<base>/rate?invite=<token>`: `base` is the studio's public address when one was given, else the
scheme and host of the organiser's own request. The database keeps only the token's hash, so a link can be
shown only when it is made; Renew makes a new one (and the old one stops working).
"""
from __future__ import annotations

import base64
import html
import io
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
import segno

from engine import Invitation, Studio
from ui.i18n import t
from ui.portal import PORTAL_PATH
from ui.study_organise import chosen_study
from ui.wiring import worded_errors

QR_SCALE = 6  # pixels per QR module: a phone's camera reads it at arm's length from a screen
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
QR_FILE_NAME = "invitation-qr.png"  # what the QR code's download link saves it as


@dataclass
class InviteView:
    """The invitation panel's components that handlers fill: the name and domain boxes, the rater picker, the
    link (text with a copy button), its QR code (HTML holding the image) and a line for the organiser."""

    name: Any
    domain: Any
    raters: Any
    link: Any
    qr: Any
    info: Any

    @property
    def link_outputs(self) -> list:
        """The outputs of the handlers that show or clear a link, in the API's order."""
        return [self.link, self.qr, self.raters, self.info]


def base_address(public_url: str | None, request: gr.Request | None) -> str:
    """Where raters reach this server: the public address if one was given, else the scheme and host the
    organiser's own browser used (without a trailing slash)."""
    if public_url:
        return public_url.rstrip("/")
    if request is None:
        return ""
    return f"{request.url.scheme}://{request.headers['host']}"


def invitation_link(base: str, token: str) -> str:
    """A rater's link to the portal."""
    return f"{base}{PORTAL_PATH}?invite={token}"


def is_loopback(base: str) -> bool:
    """Whether `base` names this computer only (localhost, 127.x.x.x, ::1): a link other computers cannot open."""
    host = (urlsplit(base if "//" in base else f"//{base}").hostname or "").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def qr_png(link: str) -> bytes:
    """The link as a QR code in PNG (made by segno)."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=QR_SCALE, border=4)
    return buffer.getvalue()


def qr_html(link: str, lang: str) -> str:
    """The link's QR code for the page: the image and a link that downloads it, both carrying the PNG as a
    `data:` URI, so no file of it is written on the server."""
    uri = "data:image/png;base64," + base64.b64encode(qr_png(link)).decode("ascii")
    return (f'<img src="{uri}" alt="{html.escape(t("invite_qr", lang))}" '
            'style="image-rendering: pixelated; max-width: 100%; height: auto; display: block">'
            f'<a href="{uri}" download="{QR_FILE_NAME}">{html.escape(t("invite_qr_download", lang))}</a>')


def rater_choices(raters: list) -> list[tuple[str, int]]:
    """(label, rater id) for the rater picker from `Studio.rater_progress`, in the order raters were invited;
    a revoked link is marked."""
    return [(_rater_label(r.name, r.domain) + (" ✕" if r.revoked else ""), r.rater_id) for r in raters]


def _rater_label(name: str, domain: str | None) -> str:
    """A rater's name, with their domain in brackets when they have one."""
    return f"{name} ({domain})" if domain else name


def _shown_link(studio: Studio, view: InviteView, lang: str, invitation: Invitation, base: str,
                done_key: str) -> dict:
    """Outputs for a link just made: the link, its QR code, the picker with this rater chosen and a line."""
    link = invitation_link(base, invitation.token)
    lines = [t(done_key, lang, name=_rater_label(invitation.name, invitation.domain)), t("invite_shown_once", lang)]
    if is_loopback(base):
        lines.append(t("invite_loopback", lang))
    picker = gr.Dropdown(choices=rater_choices(studio.rater_progress(invitation.study_id)),
                         value=invitation.rater_id)
    return {view.link: link, view.qr: qr_html(link, lang), view.raters: picker,
            view.info: "\n\n".join(lines)}


@worded_errors
def invite_rater(studio: Studio, view: InviteView, public_url: str | None, lang: str, study_id: int | None,
                 name: str, domain: str, request: gr.Request) -> dict:
    """Inputs: language, study, the rater's display name and domain (optional). Outputs: the name and domain
    boxes (emptied), the rater's link and its QR code, the rater picker with them chosen, and a line saying the
    link is shown only now."""
    invitation = studio.invite_rater(chosen_study(study_id, lang), (name or "").strip(), (domain or "").strip() or None)
    shown = _shown_link(studio, view, lang, invitation, base_address(public_url, request), "invite_done")
    return {view.name: "", view.domain: "", **shown}


@worded_errors
def renew_link(studio: Studio, view: InviteView, public_url: str | None, lang: str, study_id: int | None,
               rater_id: int | None, request: gr.Request) -> dict:
    """Inputs: language, study, rater. Outputs: the rater's new link and its QR code (the old link stops
    working; a revoked rater is let in again), the rater picker and a line."""
    invitation = studio.renew_invitation(chosen_study(study_id, lang), _chosen_rater(rater_id, lang))
    return _shown_link(studio, view, lang, invitation, base_address(public_url, request), "invite_renewed")


@worded_errors
def revoke_link(studio: Studio, view: InviteView, lang: str, study_id: int | None, rater_id: int | None) -> dict:
    """Inputs: language, study, rater. Outputs: the link and QR code (emptied), the rater picker (the rater
    marked revoked) and a line saying the link no longer works and their votes are kept."""
    study_id, rater_id = chosen_study(study_id, lang), _chosen_rater(rater_id, lang)
    studio.revoke_invitation(study_id, rater_id)
    raters = studio.rater_progress(study_id)
    revoked = next(r for r in raters if r.rater_id == rater_id)
    return {view.link: "", view.qr: "", view.raters: gr.Dropdown(choices=rater_choices(raters), value=rater_id),
            view.info: t("invite_revoked", lang, name=_rater_label(revoked.name, revoked.domain))}


@worded_errors
def show_raters(studio: Studio, view: InviteView, lang: str, study_id: int | None) -> dict:
    """Inputs: language, study. Outputs: the rater picker for that study, and the link, QR code and line emptied
    (a link is shown only when it is made)."""
    choices = rater_choices(studio.rater_progress(int(study_id))) if study_id not in (None, "") else []
    return {view.raters: gr.Dropdown(choices=choices, value=None), view.link: "", view.qr: "", view.info: ""}


def _chosen_rater(rater_id: Any, lang: str) -> int:
    """The picked rater's id; a worded `gr.Error` when no rater is picked."""
    if rater_id is None or rater_id == "":
        raise gr.Error(t("invite_pick_rater", lang))
    return int(rater_id)
