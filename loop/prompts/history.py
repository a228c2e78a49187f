"""A template's decision history: every switch of its active version and every experiment change.

Entries are JSON members of ``P:template:<id>:history`` (score = the store's row sequence, taken
before the transaction, so entries written in the same millisecond keep their order), written in the MULTI
that makes the change, capped at ``TEMPLATE_HISTORY_LIMIT`` (the newest are kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from loop.clock import iso
from loop.ids import new_id
from loop.keys import Keys
from loop.store.types import Client, Pipe
from loop.tunables import TEMPLATE_HISTORY_LIMIT

#: The actor of the worker's decisions (a person's are their API key name).
SYSTEM_ACTOR = "loop:experiments"
ACTIONS = ("promote", "rollback", "withdraw", "candidate_set", "candidate_clear")


def stage(pipe: Pipe, keys: Keys, template_id: str, seq: int, now: int, action: str, actor: str,
          from_version: str | None, to_version: str | None, reason: str | None,
          figures: Mapping[str, Any] | None) -> None:
    """Queue one entry (on a MULTI pipeline)."""
    entry = {"id": new_id(), "at": iso(now), "action": action, "actor": actor, "templateId": template_id,
             "fromVersionId": from_version, "toVersionId": to_version, "reason": reason,
             "figures": dict(figures) if figures is not None else None}
    key = keys.template_history(template_id)
    pipe.zadd(key, {orjson.dumps(entry).decode(): seq})
    pipe.zremrangebyrank(key, 0, -TEMPLATE_HISTORY_LIMIT - 1)


def page(r: Client, keys: Keys, template_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first."""
    key = keys.template_history(template_id)
    raw = r.zrevrange(key, offset, offset + limit - 1)
    entries: list[dict[str, Any]] = [orjson.loads(m) for m in raw]
    return entries, int(r.zcard(key))
