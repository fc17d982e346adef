"""Study passwords: salted PBKDF2-SHA256 hashes, compared in constant time."""
from __future__ import annotations

import hashlib
import hmac
import secrets

_PBKDF2_ROUNDS = 100_000


def hash_password(password: str) -> str:
    """Hash `password` with a fresh salt as `pbkdf2_sha256$<rounds>$<salt hex>$<digest hex>`."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a `hash_password` string (compared in constant time); False when it is malformed."""
    try:
        _scheme, rounds, salt, digest = stored.split("$")
        actual = hashlib.pbkdf2_hmac("sha256", (password or "").encode("utf-8"), bytes.fromhex(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual.hex(), digest)
