"""Opaque ids: 24 lowercase alphanumerics starting with a letter (cuid2-shaped)."""

from __future__ import annotations

import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id() -> str:
    first = secrets.choice(_ALPHABET[:26])
    return first + "".join(secrets.choice(_ALPHABET) for _ in range(23))


def new_token(prefix: str = "loop_") -> str:
    """A secret API key or claim token: prefix + 64 hex chars."""
    return prefix + secrets.token_hex(32)
