"""Named API keys, stored as SHA-256 digests (the secret itself is shown once, at creation)."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import orjson

from loop.clock import iso
from loop.errors import Conflict, NotFound
from loop.ids import new_id, new_token
from loop.ids import token_digest as digest
from loop.models import Row
from loop.store.types import Pipe

if TYPE_CHECKING:
    from loop.store.base import RedisStore

BOOTSTRAP_NAME = "bootstrap"


class ApiKeys:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def authenticate(self, token: str) -> str | None:
        """The key's name, or ``None``. The bootstrap key is compared in constant time;
        named keys are looked up by digest, so the lookup reveals nothing about the secret."""
        if hmac.compare_digest(token.encode(), self.s.settings.api_key.encode()):
            return BOOTSTRAP_NAME
        raw = self.s.r.hget(self.k.apikeys(), digest(token))
        if raw is None:
            return None
        name: str = orjson.loads(raw)["name"]
        return name

    def create(self, name: str) -> Row:
        if name == BOOTSTRAP_NAME:
            raise Conflict(f"The key name {BOOTSTRAP_NAME!r} is reserved")
        token = new_token()
        d = digest(token)
        record = {"id": new_id(), "name": name, "createdAt": iso(self.s.now()), "prefix": token[:9]}
        names = self.k.apikey_names()

        def tx(pipe: Pipe) -> None:
            if pipe.hexists(names, name):
                raise Conflict("API key name already exists")
            pipe.multi()
            pipe.hset(names, name, d)
            pipe.hset(self.k.apikeys(), d, orjson.dumps(record))

        self.s.transact(tx, names)
        return {**record, "key": token}

    def list(self) -> list[Row]:
        rows = [orjson.loads(v) for v in self.s.r.hvals(self.k.apikeys())]
        return sorted(rows, key=lambda r: (r["createdAt"], r["name"]))

    def delete(self, key_id_or_name: str) -> None:
        for d, raw in self.s.r.hgetall(self.k.apikeys()).items():
            rec = orjson.loads(raw)
            if key_id_or_name in (rec["id"], rec["name"]):
                pipe = self.s.r.pipeline(transaction=True)
                pipe.hdel(self.k.apikeys(), d)
                pipe.hdel(self.k.apikey_names(), rec["name"])
                pipe.execute()
                return
        raise NotFound("API key not found")
