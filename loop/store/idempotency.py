"""Idempotency-Key storage: a repeated key replays the first response for 24 hours."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from loop.tunables import IDEMPOTENCY_LOCK_SECONDS, IDEMPOTENCY_TTL_SECONDS

if TYPE_CHECKING:
    from loop.store.base import RedisStore

PENDING = "pending"


class Idempotency:
    def __init__(self, store: RedisStore) -> None:
        self.s = store

    def _key(self, principal: str, method: str, path: str, idem_key: str) -> str:
        raw = "\x00".join((principal, method, path, idem_key)).encode()
        return self.s.keys.idempotency(hashlib.sha256(raw).hexdigest())

    def begin(self, principal: str, method: str, path: str, idem_key: str, body_hash: str) -> tuple[str, Any]:
        """Claim the key. Returns ``("new", key)``, ``("replay", stored)``, ``("pending", None)``
        or ``("mismatch", None)`` when the same key came with a different body."""
        key = self._key(principal, method, path, idem_key)
        marker = orjson.dumps({"state": PENDING, "bodyHash": body_hash})
        if self.s.r.set(key, marker, nx=True, ex=IDEMPOTENCY_LOCK_SECONDS):
            return "new", key
        raw = self.s.r.get(key)
        if raw is None:  # expired in between: claim again
            return self.begin(principal, method, path, idem_key, body_hash)
        stored = orjson.loads(raw)
        if stored.get("bodyHash") != body_hash:
            return "mismatch", None
        if stored["state"] == PENDING:
            return "pending", None
        return "replay", stored

    def finish(self, key: str, status: int, body: bytes, body_hash: str, content_type: str | None) -> None:
        record = {"state": "done", "bodyHash": body_hash, "status": status,
                  "body": body.decode("utf-8", "replace"), "contentType": content_type}
        self.s.r.set(key, orjson.dumps(record), ex=IDEMPOTENCY_TTL_SECONDS)

    def abandon(self, key: str) -> None:
        """Forget a claim whose request failed in a way worth retrying (5xx)."""
        self.s.r.delete(key)
