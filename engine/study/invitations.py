"""Inviting raters to a blind study: one secret link per rater, revoked or renewed by the organiser.

The token in a rater's link is their identity: `secrets.token_urlsafe(16)` (128 random bits), handed out once
(in the `Invitation`) and stored only as its sha256, so the database file cannot give a link away. A part of
`StudyStore` (it uses the store's connections).
"""
from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from engine.errors import EngineError
from engine.study.database import StudyDatabase, now

TOKEN_BYTES = 16  # 128 bits
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what token_urlsafe gives; anything else is not looked up


@dataclass(frozen=True)
class Invitation:
    """A rater's link, as handed out when they are invited or their link is renewed (the only time the token
    is known: the database keeps its hash)."""

    study_id: int
    rater_id: int
    name: str
    domain: str | None
    token: str


@dataclass(frozen=True)
class RaterPass:
    """Who holds a valid token, and the study's language and state."""

    study_id: int
    rater_id: int
    name: str
    study_name: str
    lang: str
    state: str


@dataclass(frozen=True)
class RaterProgress:
    """How far one rater got: items judged (latest votes) of all they will be shown, and when they last rated."""

    rater_id: int
    name: str
    domain: str | None
    done: int
    total: int
    last_active: str | None
    revoked: bool


def token_hash(token: str) -> str:
    """The stored form of a token: its sha256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StudyInvitations(StudyDatabase):
    """The invitations part of `StudyStore`: inviting raters, revoking and renewing their links, resolving a
    link to its rater, and each rater's progress."""

    def invite_rater(self, study_id: int, name: str, domain: str | None = None) -> Invitation:
        """A new rater of the study with their own link; names are unique per study (case ignored)."""
        name = " ".join((name or "").split())
        if not name:
            raise EngineError("study_rater_name_empty")
        domain = " ".join((domain or "").split()) or None
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._connect(write=True) as conn:
            self._study_row(conn, study_id)
            taken = [r["name"] for r in conn.execute("SELECT name FROM raters WHERE study_id = ?", (study_id,))]
            if name.casefold() in {other.casefold() for other in taken}:
                raise EngineError("study_rater_name_taken", {"name": name})
            rater_id = conn.execute("INSERT INTO raters (study_id, name, created, domain, token_hash) "
                                    "VALUES (?, ?, ?, ?, ?)",
                                    (study_id, name, now(), domain, token_hash(token))).lastrowid
        return Invitation(study_id=study_id, rater_id=rater_id, name=name, domain=domain, token=token)

    def renew_invitation(self, study_id: int, rater_id: int) -> Invitation:
        """A new link for the rater (the old one stops working; a revoked rater is invited again)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._connect(write=True) as conn:
            rater = self._check_rater(conn, study_id, rater_id)
            conn.execute("UPDATE raters SET token_hash = ?, revoked = 0 WHERE id = ?", (token_hash(token), rater_id))
        return Invitation(study_id=study_id, rater_id=rater_id, name=rater["name"], domain=rater["domain"],
                          token=token)

    def revoke_invitation(self, study_id: int, rater_id: int) -> None:
        """Stop the rater's link from working; their votes are kept."""
        with self._connect(write=True) as conn:
            self._check_rater(conn, study_id, rater_id)
            conn.execute("UPDATE raters SET revoked = 1 WHERE id = ?", (rater_id,))

    def rater_for_invitation(self, token: str) -> RaterPass:
        """Who holds `token`; one error (`invite_unknown`) for a token that is empty, malformed, unknown or
        revoked, so a link says nothing about why it fails."""
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            raise EngineError("invite_unknown")
        with self._connect() as conn:
            row = conn.execute("SELECT r.id, r.study_id, r.name, s.name AS study_name, s.lang, s.state "
                               "FROM raters r JOIN studies s ON s.id = r.study_id "
                               "WHERE r.token_hash = ? AND NOT r.revoked", (token_hash(token),)).fetchone()
        if row is None:
            raise EngineError("invite_unknown")
        return RaterPass(study_id=row["study_id"], rater_id=row["id"], name=row["name"],
                         study_name=row["study_name"], lang=row["lang"], state=row["state"])

    def rater_progress(self, study_id: int) -> list[RaterProgress]:
        """Each rater's progress (items judged of all they will see), in the order they were invited."""
        with self._connect() as conn:
            self._study_row(conn, study_id)
            total = self._items_per_rater(conn, study_id)
            rows = conn.execute(
                "SELECT r.id, r.name, r.domain, r.last_active, r.revoked, "
                "(SELECT COUNT(*) FROM latest_votes v WHERE v.study_id = r.study_id AND v.rater_id = r.id) AS done "
                "FROM raters r WHERE r.study_id = ? ORDER BY r.id", (study_id,)).fetchall()
        return [RaterProgress(rater_id=r["id"], name=r["name"], domain=r["domain"], done=r["done"], total=total,
                              last_active=r["last_active"], revoked=bool(r["revoked"])) for r in rows]

    @staticmethod
    def _items_per_rater(conn: sqlite3.Connection, study_id: int) -> int:
        """How many items each rater is shown: every question, and as many repeats as the study asks for."""
        row = conn.execute("SELECT s.repeats, COUNT(q.id) AS questions FROM studies s "
                           "LEFT JOIN questions q ON q.study_id = s.id WHERE s.id = ? GROUP BY s.id",
                           (study_id,)).fetchone()
        return row["questions"] + min(row["repeats"], row["questions"])
