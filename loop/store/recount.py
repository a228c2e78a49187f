"""Rebuild the list counters from the rows: ``P:counts:project_status``, ``project_type``,
``project_status_type`` and ``P:counts:signals``.

Loop keeps them in the writes that change what they count; run this once on data written by a
Loop from before a counter existed (project + type and signal-filter totals would otherwise
undercount those rows), or to repair one. Stop Loop while it runs: a write made during the
rebuild may be missed by it.

    REDIS_URL=redis://... LOOP_NAMESPACE=loop python -m loop.store.recount
"""

from __future__ import annotations

import sys
from collections import Counter

from loop.settings import Settings
from loop.store.base import DEFAULT_REDIS_URL, RedisStore, connect
from loop.store.issue_indexes import BITMAPS
from loop.store.issue_pages import COUNTED
from loop.store.signals import FILTERS, combo_fields
from loop.tunables import RECOUNT_BATCH as BATCH


def _rows(store: RedisStore, kind: str, fields: list[str]) -> list[list[str | None]]:
    """``fields`` of every ``P:<kind>:<id>`` hash (SCAN, then pipelined HMGETs)."""
    head = store.keys.row(kind, "")
    keys = [key for key in store.r.scan_iter(match=head + "*", count=BATCH) if ":" not in key[len(head):]]
    out: list[list[str | None]] = []
    for start in range(0, len(keys), BATCH):
        pipe = store.r.pipeline(transaction=False)
        for key in keys[start:start + BATCH]:
            pipe.hmget(key, fields)
        out += pipe.execute()
    return out


def counters(store: RedisStore) -> tuple[dict[str, Counter[str]], int, int]:
    """What every list counter should hold (name -> field -> count), from the rows; with the
    numbers of issue and signal hashes seen. ``loop admin check`` compares against this too."""
    counts: dict[str, Counter[str]] = {"_".join(("project", *c)): Counter() for c in COUNTED}
    counts["signals"] = Counter()
    issues = _rows(store, "issue", ["projectId", "deletedAt", *BITMAPS.values()])
    for project, deleted, *values in issues:
        if project and not deleted:
            row = dict(zip(BITMAPS.values(), values, strict=True))
            for fields in COUNTED:
                counts["_".join(("project", *fields))]["|".join((project, *(str(row[f]) for f in fields)))] += 1
    signals = _rows(store, "signal", list(FILTERS))
    for values in signals:
        counts["signals"].update(combo_fields(dict(zip(FILTERS, values, strict=True))))
    return counts, len(issues), len(signals)


def rebuild(store: RedisStore) -> tuple[int, int]:
    """Recompute the counters; returns (issues, signals) seen."""
    counts, issues, signals = counters(store)
    pipe = store.r.pipeline(transaction=True)
    for name, counter in counts.items():
        pipe.delete(store.keys.counts(name))
        if counter:
            pipe.hset(store.keys.counts(name), mapping=dict(counter))
    pipe.execute()
    return issues, signals


def main() -> int:
    settings = Settings.from_env()
    store = RedisStore(connect(settings.redis_url or DEFAULT_REDIS_URL), settings)
    issues, signals = rebuild(store)
    print(f"recounted namespace {settings.namespace!r}: {issues} issue and {signals} signal hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
