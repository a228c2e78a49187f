"""Webhook signature checks, on the raw body bytes, in constant time.

Every configured secret is tried (rotation: old and new secret side by side) and all are
compared, so the time taken does not depend on which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from loop.errors import Unauthorized

INVALID_SIGNATURE = "Invalid webhook signature"
INVALID_SECRET = "Invalid webhook secret"


def _b(value: str) -> bytes:
    # Header values are latin-1 text; anything unencodable cannot match a hex digest anyway.
    return value.encode("utf-8", "replace")


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _any_equal(given: bytes, candidates: Iterable[bytes]) -> bool:
    ok = False
    for expected in candidates:
        ok |= hmac.compare_digest(expected, given)
    return ok


def github(secrets: Iterable[str], body: bytes, header: str) -> None:
    """``X-Hub-Signature-256: sha256=<lowercase hex HMAC-SHA256(secret, body)>``."""
    given = _b(header.strip())
    if not _any_equal(given, (_b("sha256=" + hmac_hex(s, body)) for s in secrets)):
        raise Unauthorized(INVALID_SIGNATURE)


def sentry(secrets: Iterable[str], body: bytes, header: str) -> None:
    """``Sentry-Hook-Signature: <hex HMAC-SHA256(client secret, raw body)>`` (no prefix)."""
    given = _b(header.strip().lower())
    if not _any_equal(given, (_b(hmac_hex(s, body)) for s in secrets)):
        raise Unauthorized(INVALID_SIGNATURE)


def shared_secret(secrets: Iterable[str], given: str) -> None:
    """PostHog: the header carries the shared secret itself."""
    if not _any_equal(_b(given), (_b(s) for s in secrets)):
        raise Unauthorized(INVALID_SECRET)
