"""Rebuild the issue bitmaps and the number -> id string from the issue hashes, and the goal
status indexes from the goals index and hashes.

For data written before those indexes existed (Loop before 2026-11-21 kept status, type,
priority and liveness in zsets), or to repair them. Run it while Loop is stopped: writes made
during the rebuild may be missed by it.

    REDIS_URL=redis://... LOOP_NAMESPACE=loop python -m loop.store.reindex
"""

from __future__ import annotations

import sys

from loop.keys import ID_WIDTH
from loop.models import GOAL_STATUSES
from loop.runtime import DEFAULT_REDIS_URL
from loop.settings import Settings
from loop.store.base import RedisStore, connect
from loop.store.issues import BITMAPS


def _set(bits: dict[str, bytearray], key: str, n: int) -> None:
    buf = bits.setdefault(key, bytearray())
    if len(buf) <= n // 8:
        buf.extend(bytes(n // 8 + 1 - len(buf)))
    buf[n // 8] |= 0x80 >> (n % 8)


def rebuild(store: RedisStore) -> int:
    """Recompute every issue bitmap and ``P:issues:ids``; returns the number of issues seen."""
    k, r = store.keys, store.r
    head = k.issue("")
    keys = [key for key in r.scan_iter(match=head + "*", count=1000) if ":" not in key[len(head):]]
    bits: dict[str, bytearray] = {}
    ids = bytearray()
    fields = ["id", "number", "deletedAt", *BITMAPS.values()]
    for start in range(0, len(keys), 1000):
        pipe = r.pipeline(transaction=False)
        for key in keys[start:start + 1000]:
            pipe.hmget(key, fields)
        for iid, number, deleted, *values in pipe.execute():
            if not iid or not number:
                continue
            n = int(number)
            end = n * ID_WIDTH
            if len(ids) < end:
                ids.extend(b" " * (end - len(ids)))
            ids[end - ID_WIDTH:end] = iid.encode()
            if deleted:
                continue
            _set(bits, k.issue_bits(), n)
            for name, value in zip(BITMAPS, values, strict=True):
                if value is not None:
                    _set(bits, k.issue_bits(name, value), n)
    stale = list(r.scan_iter(match=k.issue_bits() + "*", count=1000))
    pipe = r.pipeline(transaction=True)
    if stale:
        pipe.delete(*stale)
    for key, buf in bits.items():
        pipe.set(key, bytes(buf))
    if ids:
        pipe.set(k.issue_ids(), bytes(ids))
    pipe.execute()
    return len(keys)


def rebuild_goal_status(store: RedisStore) -> int:
    """Recompute ``P:idx:goals:status:<status>`` (goals written before it existed); returns the
    number of live goals indexed."""
    k, r = store.keys, store.r
    ranked = r.zrange(k.index("goals"), 0, -1, withscores=True)
    pipe = r.pipeline(transaction=False)
    for goal_id, _ in ranked:
        pipe.hget(k.row("goal", goal_id), "status")
    statuses = pipe.execute()
    pipe = r.pipeline(transaction=True)
    pipe.delete(*(k.status_index("goals", s) for s in GOAL_STATUSES))
    for (goal_id, seq), status in zip(ranked, statuses, strict=True):
        if status:
            pipe.zadd(k.status_index("goals", status), {goal_id: seq})
    pipe.execute()
    return len(ranked)


def main() -> int:
    settings = Settings.from_env()
    store = RedisStore(connect(settings.redis_url or DEFAULT_REDIS_URL), settings)
    n = rebuild(store)
    print(f"rebuilt the issue indexes of namespace {settings.namespace!r} from {n} issue hashes")
    g = rebuild_goal_status(store)
    print(f"rebuilt the goal status indexes of namespace {settings.namespace!r} from {g} goals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
