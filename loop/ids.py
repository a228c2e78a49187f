"""Opaque ids: 24 lowercase alphanumerics starting with a letter (cuid2-shaped)."""

from __future__ import annotations

import hashlib
import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_SPACE = 26 * 36**23


def new_id() -> str:
    """One read of the OS's randomness (not 24): ids are minted on every create and claim."""
    n = int.from_bytes(secrets.token_bytes(20)) % _SPACE  # 160 random bits over a ~2^123 space
    n, first = divmod(n, 26)
    chars = [_ALPHABET[first]]
    for _ in range(23):
        n, d = divmod(n, 36)
        chars.append(_ALPHABET[d])
    return "".join(chars)


def token_digest(token: str) -> str:
    """How a secret (API key, claim token) is stored: its SHA-256, so a read of Redis reveals none."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "loop_") -> str:
    """A secret API key or claim token: prefix + 64 hex chars."""
    return prefix + secrets.token_hex(32)
