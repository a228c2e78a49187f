"""Retention: purge closed sessions, soft-deleted issues and signal payloads past their age.

Each kind is scheduled in a time-ordered zset when it becomes purgeable (``P:retention:<kind>``:
a session when it closes, an issue when it is soft-deleted, a payload when its signal is
written), so a run reads the oldest entries with one ZRANGEBYSCORE and removes at most
``RETENTION_BATCH`` of each kind: its cost never depends on the backlog, and no run scans
the keyspace. Every purge re-checks what it removes and never touches anything live (an
active session, a live issue). Settings: ``LOOP_*_RETENTION_SECONDS`` (0 keeps forever);
docs/operations.md, "Retention".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from loop.errors import NotFound
from loop.keys import ID_WIDTH
from loop.store.signals import FILTERS as SIGNAL_FILTERS
from loop.store.signals import combo_fields
from loop.store.types import Pipe
from loop.tunables import RETENTION_BATCH
from loop.tunables import RETENTION_SWEEP_SECONDS as RETENTION_SWEEP_SECONDS  # re-exported: workers.runner

if TYPE_CHECKING:
    from loop.runtime import Loop
    from loop.settings import Settings

log = logging.getLogger("loop.retention")


def _due(store: Loop, kind: str, keep_seconds: int, batch: int) -> list[str]:
    """The oldest ids scheduled for ``kind`` that are older than ``keep_seconds``."""
    if keep_seconds <= 0:
        return []
    cutoff = store.now() - keep_seconds * 1000
    ids: list[str] = store.r.zrangebyscore(store.keys.retention(kind), "-inf", cutoff, start=0, num=batch)
    return ids


def purge_sessions(store: Loop, batch: int = RETENTION_BATCH) -> int:
    """Remove closed sessions older than ``session_retention_seconds`` (hash + issue's list)."""
    k = store.keys
    ids = _due(store, "sessions", store.settings.session_retention_seconds, batch)
    if not ids:
        return 0
    pipe = store.r.pipeline(transaction=False)
    for sid in ids:
        pipe.hmget(k.session(sid), "status", "issueId")
    rows = pipe.execute()
    pipe = store.r.pipeline(transaction=True)
    purged = 0
    for sid, (status, issue_id) in zip(ids, rows, strict=True):
        pipe.zrem(k.retention("sessions"), sid)
        if status == "active":  # never a live claim (it is scheduled again when it closes)
            continue
        pipe.delete(k.session(sid))
        if issue_id:
            pipe.zrem(k.issue_sessions(issue_id), sid)
        purged += status is not None
    pipe.execute()
    return purged


def purge_payloads(store: Loop, batch: int = RETENTION_BATCH) -> int:
    """Drop signal payloads older than ``signal_payload_retention_seconds``; the signal and its
    issue stay (``payload``/``signalPayload`` read null from then on)."""
    k = store.keys
    ids = _due(store, "payloads", store.settings.signal_payload_retention_seconds, batch)
    if not ids:
        return 0
    pipe = store.r.pipeline(transaction=False)
    for sid in ids:
        pipe.hget(k.row("signal", sid), "issueId")
    issue_ids = pipe.execute()
    pipe = store.r.pipeline(transaction=True)
    for sid, issue_id in zip(ids, issue_ids, strict=True):
        pipe.hdel(k.row("signal", sid), "payload")  # the copy signals kept before payloads were stored once
        if issue_id:
            pipe.hdel(k.issue(issue_id), "signalPayload")
        pipe.zrem(k.retention("payloads"), sid)
    pipe.execute()
    return len(ids)


def purge_issues(store: Loop, batch: int = RETENTION_BATCH) -> int:
    """Remove soft-deleted issues older than ``deleted_issue_retention_seconds`` with every side key."""
    ids = _due(store, "issues", store.settings.deleted_issue_retention_seconds, batch)
    return sum(_purge_issue(store, iid) for iid in ids)


def _purge_issue(store: Loop, iid: str) -> bool:
    """One deleted issue, in one WATCH/MULTI; ``False`` (just unscheduled) if it is live or gone."""
    from loop.models import ISSUE_FIELDS, decode
    from loop.store.signals import SIGNAL_FIELDS

    k = store.keys
    # Its relations first, both directions, through the relation service: its hooks keep
    # dispatch's blocker maps exact. A relation added meanwhile is caught by the WATCH below.
    for index in (k.issue_relations(iid), k.issue_relations_in(iid)):
        for rid in store.r.zrange(index, 0, -1):
            try:
                store.relations.delete(rid)
            except NotFound:  # already gone (a concurrent delete): just drop the stale entry
                store.r.zrem(index, rid)

    def tx(pipe: Pipe) -> bool:
        raw = pipe.hgetall(k.issue(iid))
        issue = decode(ISSUE_FIELDS, raw) if raw else None
        if issue is None or issue["deletedAt"] is None:  # gone already, or live: never purge
            pipe.multi()
            pipe.zrem(k.retention("issues"), iid)
            return False
        sessions = pipe.zrange(k.issue_sessions(iid), 0, -1)
        if sessions and any(s == "active" for s in _statuses(pipe, k, sessions)):
            pipe.multi()  # a claim still running: leave the issue scheduled, the next run sees it
            return False
        comments = pipe.zrange(k.issue_comments(iid), 0, -1)
        relations = pipe.zrange(k.issue_relations(iid), 0, -1)
        signal_ids = pipe.zrangebyscore(k.signal_index(), issue["number"], issue["number"])
        signals = [decode(SIGNAL_FIELDS, pipe.hgetall(k.row("signal", s))) for s in signal_ids]
        pipe.multi()
        pipe.delete(k.issue(iid), k.issue_labels(iid), k.issue_comments(iid), k.issue_sessions(iid),
                    *(k.row("comment", c) for c in comments), *(k.session(s) for s in sessions),
                    *(k.row("relation", r) for r in relations),
                    k.dispatch_state(iid), k.dispatch_blockers(iid), k.dispatch_blocking(iid))
        pipe.delete(k.issue_relations(iid), k.issue_relations_in(iid))
        if sessions:
            pipe.zrem(k.retention("sessions"), *sessions)
        # The number no longer names an issue (its bits were cleared when it was deleted).
        pipe.setrange(k.issue_ids(), (issue["number"] - 1) * ID_WIDTH, "\0" * ID_WIDTH)
        for sig in signals:
            sid = sig["id"] or ""
            pipe.delete(k.row("signal", sid))
            pipe.zrem(k.signal_index(), sid)
            for name, field in SIGNAL_FILTERS.items():
                if sig.get(name) is not None:
                    pipe.zrem(k.signal_index(field, str(sig[name])), sid)
            for combo in combo_fields(sig):  # the filter-combination totals counted it
                pipe.hincrby(k.counts("signals"), combo, -1)
            pipe.zrem(k.retention("payloads"), sid)
        pipe.zrem(k.retention("issues"), iid)
        return True

    purged: bool = store.transact(tx, k.issue(iid), k.issue_comments(iid), k.issue_sessions(iid),
                                  k.issue_relations(iid), k.issue_relations_in(iid))
    return purged


def _statuses(pipe: Pipe, k: Any, sessions: list[str]) -> list[str | None]:
    return [pipe.hget(k.session(s), "status") for s in sessions]


def purge(store: Loop, batch: int = RETENTION_BATCH) -> dict[str, int]:
    """One retention run: at most ``batch`` rows of each kind; how many of each were purged."""
    done = {"sessions": purge_sessions(store, batch), "payloads": purge_payloads(store, batch),
            "issues": purge_issues(store, batch)}
    if any(done.values()):
        log.info("retention purged %s", done)
    return done


def sweep(settings: Settings) -> None:
    """Periodic entry point (``workers.runner.PERIODIC``): one run with the process's store."""
    from loop.runtime import process_store  # the worker builds its graph once, on first use
    purge(process_store(settings))
