"""Recompute the dispatch indexes from the source rows and compare (tests, operators).

:func:`expect` adds dispatch's derived keys to ``loop admin check`` / ``repair``
(loop/store/reindex.py), which compares and rebuilds them with the store's own.

``audit(store)`` returns a list of human-readable discrepancies, empty when the incremental
indexes match a from-scratch computation. It scans every issue and relation, so it is a
maintenance tool, never on a request path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loop import models
from loop.dispatch import scoring
from loop.dispatch.index import Index, blocking_pair, due, eligible, unresolved
from loop.models import ISSUE_FIELDS, RELATION_FIELDS, Row

if TYPE_CHECKING:
    from loop.store.base import RedisStore
    from loop.store.reindex import Expected, Rows


class _Snapshot:
    """Every key of the namespace (one SCAN, or ``keys`` already scanned), grouped by what it holds."""

    def __init__(self, store: RedisStore, keys: list[str] | None = None) -> None:
        k = store.keys
        self.keys = keys if keys is not None else list(store.r.scan_iter(match=k.all_pattern(), count=5000))
        self.r = store.r
        self.k = k

    def matching(self, prefix: str, parts: int) -> list[str]:
        """Keys starting with ``prefix`` made of ``parts`` colon-separated parts (ids have no colon)."""
        return [key for key in self.keys if key.startswith(prefix) and key.count(":") == parts - 1]

    def hashes(self, keys: list[str]) -> list[dict[str, str]]:
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return list(pipe.execute())


def expected(store: RedisStore, snap: _Snapshot | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """``({member: stored score}, {issueId: unresolved blocker count})`` computed from the rows."""
    snap = snap or _Snapshot(store)
    k = store.keys
    issues: dict[str, Row] = {}
    for raw in snap.hashes(snap.matching(k.issue(""), 3)):
        if raw and "id" in raw:
            row = models.decode(ISSUE_FIELDS, raw)
            issues[row["id"]] = row
    pairs: set[tuple[str, str]] = set()
    for raw in snap.hashes(snap.matching(k.row("relation", ""), 3)):
        pair = blocking_pair(models.decode(RELATION_FIELDS, raw))
        if pair is not None:
            pairs.add(pair)
    blocked: dict[str, int] = {}
    for blocker, target in pairs:
        if unresolved(issues.get(blocker)):
            blocked[target] = blocked.get(target, 0) + 1
    bonuses = Index(store).bonuses(row["projectId"] for row in issues.values())
    ready: dict[str, float] = {}
    now = store.now()
    for iid, row in issues.items():
        if eligible(row, blocked.get(iid, 0)) and due(row, now):
            bonus = bonuses.get(row["projectId"] or "", 0)
            ready[scoring.member(iid, row["projectId"])] = scoring.stored_score(row, bonus)
    return ready, blocked


def audit(store: RedisStore) -> list[str]:
    k, r = store.keys, store.r
    problems: list[str] = []
    snap = _Snapshot(store)
    ready, blocked = expected(store, snap)
    want_blocked = {iid for iid, n in blocked.items() if n}
    have_blocked = set(r.zrange(k.dispatch_blocked(), 0, -1))
    if have_blocked != want_blocked:
        problems.append(f"blocked index: missing {sorted(want_blocked - have_blocked)[:5]}, "
                        f"extra {sorted(have_blocked - want_blocked)[:5]}")
    actual = dict(r.zrange(k.dispatch_ready(), 0, -1, withscores=True))
    # Due but not yet moved by a claim or the scheduler tick: a transient state, not a fault.
    waiting = set(r.zrangebyscore(k.dispatch_scheduled(), "-inf", store.now()))
    problems += _audit_scheduled(store, snap)
    for m in sorted(set(ready) | set(actual)):
        if m not in actual and m in waiting:
            ready.pop(m)
        elif m not in actual:
            problems.append(f"{m} is eligible but not in the ready set")
        elif m not in ready:
            problems.append(f"{m} is in the ready set but not eligible")
        elif abs(actual[m] - ready[m]) > 1e-6:
            problems.append(f"{m} has score {actual[m]}, expected {ready[m]}")
    by_project: dict[str, dict[str, float]] = {}
    for m, sc in ready.items():
        pid = scoring.parse_member(m)[1]
        if pid:
            by_project.setdefault(pid, {})[m] = sc
    project_prefix = k.dispatch_ready("-")[:-1]
    for key in [key for key in snap.keys if key.startswith(project_prefix)]:
        pid = key[len(project_prefix):]
        if set(r.zrange(key, 0, -1)) != set(by_project.get(pid, {})):
            problems.append(f"ready set of project {pid} differs from the eligible issues of that project")
        by_project.pop(pid, None)
    for pid, members in by_project.items():
        if members:
            problems.append(f"project {pid} has eligible issues but no ready set")
    for key in snap.matching(k.dispatch_state(""), 4):
        iid = key.rsplit(":", 1)[1]
        have = int(r.hget(key, "blocked") or 0)
        if have != blocked.get(iid, 0):
            problems.append(f"issue {iid} has blocked={have}, expected {blocked.get(iid, 0)}")
        blocked.pop(iid, None)
    for iid, n in blocked.items():
        if n:
            problems.append(f"issue {iid} has {n} unresolved blockers but no blocked count")
    problems += _audit_sessions(store, snap)
    problems += _audit_bonuses(store, snap)
    return problems


def _audit_scheduled(store: RedisStore, snap: _Snapshot) -> list[str]:
    """The scheduled set holds exactly the live todo issues whose notBefore is still ahead (due
    members waiting for the scheduler are tolerated)."""
    k, now = store.keys, store.now()
    want = {scoring.member(row["id"], row["projectId"]): row["notBefore"]
            for raw in snap.hashes(snap.matching(k.issue(""), 3)) if raw and "id" in raw
            for row in (models.decode(ISSUE_FIELDS, raw),)
            if row["deletedAt"] is None and row["status"] == "todo" and not due(row, now)}
    have = dict(store.r.zrange(k.dispatch_scheduled(), 0, -1, withscores=True))
    problems = [f"{m} is scheduled at {want[m]} but not in the scheduled set" for m in sorted(set(want) - set(have))]
    problems += [f"{m} is in the scheduled set but not scheduled" for m in sorted(set(have) - set(want))
                 if have[m] > now]
    problems += [f"{m} is scheduled at {have[m]}, expected {want[m]}" for m in sorted(set(want) & set(have))
                 if int(have[m]) != want[m]]
    return problems


def audit_sessions(store: RedisStore, keys: list[str]) -> list[str]:
    """Session/lease inconsistencies (state, not derived: reported by ``loop admin check`` only)."""
    return _audit_sessions(store, _Snapshot(store, keys))


def expect(store: RedisStore, rows: Rows, exp: Expected) -> None:
    """Dispatch's derived keys, from the rows (``loop admin check`` / ``repair``, loop/store/reindex.py)."""
    k = store.keys
    edges: dict[tuple[str, str], int] = {}
    for rel in rows.relations:
        pair = blocking_pair(rel)
        if pair is not None:
            edges[pair] = edges.get(pair, 0) + 1
    blocked: dict[str, int] = {}
    for (blocker, target), n in edges.items():
        exp.hashes.setdefault(k.dispatch_blockers(target), {})[blocker] = str(n)
        exp.hashes.setdefault(k.dispatch_blocking(blocker), {})[target] = str(n)
        if unresolved(rows.issues.get(blocker)):
            blocked[target] = blocked.get(target, 0) + 1
    goals = [g for g in rows.goals if g["deletedAt"] is None]
    projects = [p for p in rows.projects if p["deletedAt"] is None]
    active = {g["id"] for g in goals if g["status"] == "active"}
    pointed = {g["projectId"] for g in goals if g["status"] == "active" and g["projectId"]}
    bonus = {p["id"]: scoring.GOAL_BONUS for p in projects if p["goalId"] in active or p["id"] in pointed}
    exp.hashes[k.dispatch_goal_bonus()] = {pid: str(b) for pid, b in bonus.items()}
    exp.hashes[k.dispatch_goal_links()] = {g["id"]: g["projectId"] for g in goals if g["projectId"]}
    exp.hashes[k.dispatch_project_links()] = {p["id"]: p["goalId"] for p in projects if p["goalId"]}
    for g in goals:
        if g["projectId"]:
            exp.sets.setdefault(k.dispatch_project_goals(g["projectId"]), set()).add(g["id"])
    for p in projects:
        if p["goalId"]:
            exp.sets.setdefault(k.dispatch_goal_projects(p["goalId"]), set()).add(p["id"])
    exp.zsets[k.dispatch_ready()] = {}
    exp.zsets[k.dispatch_scheduled()] = {}
    exp.zsets[k.dispatch_blocked()] = {}
    now = store.now()
    for iid, row in rows.issues.items():
        n = blocked.get(iid, 0)
        exp.fields[(k.dispatch_state(iid), "blocked")] = str(n) if n else None
        if n:
            exp.zadd(k.dispatch_blocked(), iid, None)  # any score: "blocked since" is not in the rows
        if row["deletedAt"] is None and row["status"] == "todo" and not due(row, now):
            exp.zadd(k.dispatch_scheduled(), scoring.member(iid, row["projectId"]), row["notBefore"])
        if eligible(row, n) and due(row, now):
            pid = row["projectId"]
            member, score = scoring.member(iid, pid), scoring.stored_score(row, bonus.get(pid or "", 0))
            exp.zadd(k.dispatch_ready(), member, score)
            if pid:
                exp.zadd(k.dispatch_ready(pid), member, score)
    exp.families += [(k.dispatch_ready("-")[:-1], 5), (k.dispatch_blockers(""), 4), (k.dispatch_blocking(""), 4),
                     (k.dispatch_project_goals(""), 4), (k.dispatch_goal_projects(""), 4)]


def _audit_bonuses(store: RedisStore, snap: _Snapshot) -> list[str]:
    """The applied goal bonus of every project matches its goals (improvement 7)."""
    k, r = store.keys, store.r
    goals = [models.decode(models.GOAL_FIELDS, raw) for raw in snap.hashes(snap.matching(k.row("goal", ""), 3))]
    active = {g["id"]: g for g in goals if g["deletedAt"] is None and g["status"] == "active"}
    want: dict[str, int] = {}
    for raw in snap.hashes(snap.matching(k.row("project", ""), 3)):
        p = models.decode(models.PROJECT_FIELDS, raw)
        if p["deletedAt"] is None and (p["goalId"] in active or any(g["projectId"] == p["id"] for g in active.values())):
            want[p["id"]] = scoring.GOAL_BONUS
    have = {pid: int(v) for pid, v in r.hgetall(k.dispatch_goal_bonus()).items()}
    return [f"project {pid} has goal bonus {have.get(pid, 0)}, expected {want.get(pid, 0)}"
            for pid in sorted(set(want) | set(have)) if have.get(pid, 0) != want.get(pid, 0)]


def _audit_sessions(store: RedisStore, snap: _Snapshot) -> list[str]:
    """Every lease is an active session held by an in_progress issue, and vice versa."""
    k, r = store.keys, store.r
    problems: list[str] = []
    leases = dict(r.zrange(k.dispatch_leases(), 0, -1, withscores=True))
    holders: dict[str, str] = {}
    for key in snap.matching(k.dispatch_state(""), 4):
        sid = r.hget(key, "session")
        if sid:
            holders[sid] = key.rsplit(":", 1)[1]
    for sid in sorted(set(leases) | set(holders)):
        session = r.hgetall(k.session(sid))
        iid = holders.get(sid)
        if sid not in leases or iid is None or session.get("status") != "active":
            problems.append(f"session {sid}: lease={sid in leases}, holder={iid}, status={session.get('status')}")
            continue
        if session.get("issueId") != iid or r.hget(k.issue(iid), "status") != "in_progress":
            problems.append(f"session {sid} is active but issue {iid} is not in_progress under it")
        if int(session["expiresAt"]) != int(leases[sid]):
            problems.append(f"session {sid} expires at {session['expiresAt']}, its lease at {leases[sid]}")
    return problems
