"""Bounded cost: the requests of issue 10.15 at 1k, 100k (and 1M) issues; each should stay flat.

For each backlog size (``-o sizes=1000,100000,1000000``; default 1000,100000) one server gets a
namespace seeded straight into Redis with pipelines (issues with the layout ``Issues.create``
writes, label links, signals with their indexes and counters, sessions, goals), then each request
below is measured. Everything that can grow grows with the backlog: projects hold a tenth of it,
one root has a tenth of it as children, the "common" label a tenth, the preview issue has
size/100 earlier sessions and there are size/1000 goals of other projects.

Reported per request and size: Redis commands per request (``INFO commandstats`` around 20
sequential requests: the structural figure, free of the box's noise), Redis and server CPU per
request and p50 latency. Ratios are large / small; the target is Redis commands <= 1.5x (flat),
with the CPU ratios beside it (a single command costing O(backlog) would show there).
``project + common label`` is informative: no counter gives its exact total, so it walks the
smaller of the two zsets (docs/architecture.md) and grows with the smaller index.
Project + status + type and the three signal filters ask for pages of 10: a walk stops at the page's
end, i.e. after about limit / density members of the smallest index, and with pages of 50 the 1k
backlog (12 todo tasks, ~17 matching signals in the project) could not fill one, so its walk would
end early and the ratio would compare a partial walk with a full one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.harness import Bench, Request, Result, Server
from loop.ids import new_id
from loop.models import ISSUE_FIELDS, Row
from loop.store import RedisStore, recount, reindex
from loop.store.signals import FILTERS, SIGNAL_FIELDS

PROJECTS = 10
TYPES = {"task": 60, "signal": 15, "plan": 10, "hypothesis": 10, "monitor": 5}
STATUSES = {"triage": 5, "backlog": 30, "todo": 20, "done": 40, "canceled": 5}
SOURCES = ("sentry", "github", "posthog")
SEVERITIES = {"low": 50, "medium": 30, "high": 15, "critical": 5}
BATCH = 10_000
#: Issues with the rare label (fewer than a project holds even at 1k: the label is the smaller side).
RARE_LABELLED = 80


@dataclass
class Seeded:
    project: str
    root: str
    common: str
    rare: str
    preview: str


def _weighted(rng: random.Random, weights: dict[str, int], n: int) -> list[str]:
    return rng.choices(list(weights), weights=list(weights.values()), k=n)


def seed(store: RedisStore, n: int) -> Seeded:
    """The backlog for one size (see the module docstring).

    Fast enough for 1M: issue and signal hashes and their zsets are written in pipelined bulk, then
    Loop's own rebuilders derive the rest from the hashes (``loop.store.reindex``: bitmaps and the
    id string; ``loop.store.recount``: the list counters), so the layout is the code's by
    construction. (Dispatch indexes are not seeded: nothing measured here reads them.)
    """
    rng = random.Random(1)  # the same head of the backlog at every size: only the tail grows
    k, now = store.keys, store.now()
    projects = [store.projects.create({"name": f"Bench project {i}"})["id"] for i in range(PROJECTS)]
    common = store.labels.ensure("common", "#000000")["id"]
    rare = store.labels.ensure("rare", "#ffffff")["id"]
    root = new_id()
    for start in range(0, n, BATCH):
        size = min(BATCH, n - start)
        types, statuses = _weighted(rng, TYPES, size), _weighted(rng, STATUSES, size)
        pipe = store.r.pipeline(transaction=False)
        zsets: dict[str, dict[str, int]] = {}
        for j in range(size):
            num = start + j + 1
            iid = root if num == 1 else new_id()
            parent = root if num % 10 == 5 else None
            issue: Row = {**dict.fromkeys(ISSUE_FIELDS), "id": iid, "number": num, "title": f"Bench issue {num}",
                          "type": types[j], "status": statuses[j], "priority": num % 5,
                          "projectId": None if num == 1 else projects[num % PROJECTS], "parentId": parent,
                          "createdAt": now, "updatedAt": now}
            store.write_row(pipe, "issue", ISSUE_FIELDS, iid, issue)
            if issue["projectId"]:
                zsets.setdefault(k.issue_index("project", issue["projectId"]), {})[iid] = num
            if parent:
                zsets.setdefault(k.issue_index("parent", parent), {})[iid] = num
            else:
                zsets.setdefault(k.issue_roots(), {})[iid] = now
            labels = ([common] if num % 7 == 3 else []) + ([rare] if num <= RARE_LABELLED else [])
            for lid in labels:
                pipe.sadd(k.issue_labels(iid), lid)
                zsets.setdefault(k.issue_index("label", lid), {})[iid] = num
        for key, members in zsets.items():
            pipe.zadd(key, members)
        pipe.execute()
    store.r.set(k.issue_seq(), n)
    reindex.rebuild(store)
    _signals(store, n, rng, projects)
    recount.rebuild(store)
    # The preview issue: todo in the measured project, with size/100 earlier sessions, and size/1000
    # goals of other projects beside the project's own.
    preview = store.issues.create({"title": "Reopened often", "type": "task", "status": "todo",
                                   "projectId": projects[0]})["id"]
    pipe = store.r.pipeline(transaction=False)
    for s in range(max(1, n // 100)):
        sid = f"bench-session-{s:08d}"
        pipe.hset(k.session(sid), mapping={
            "id": sid, "issueId": preview, "agentName": "bench", "status": "released", "claimedAt": now - s,
            "expiresAt": now, "endedAt": now, "reason": "bench"})
        pipe.zadd(k.issue_sessions(preview), {sid: now - s})
    pipe.execute()
    store.goals.create({"title": "The project's goal", "projectId": projects[0]})
    for g in range(max(1, n // 1000)):
        store.goals.create({"title": f"Elsewhere {g}", "projectId": f"elsewhere-{g}"})
    return Seeded(projects[1], root, common, rare, preview)


def _signals(store: RedisStore, n: int, rng: random.Random, projects: list[str]) -> None:
    """``n`` signals written as ``Signals.create`` writes them (row and indexes; ``recount`` then
    derives the combination counters), scored by made-up issue numbers (lists never read those)."""
    k = store.keys
    now = store.now()
    for start in range(0, n, BATCH):
        size = min(BATCH, n - start)
        severities = _weighted(rng, SEVERITIES, size)
        pipe = store.r.pipeline(transaction=False)
        zsets: dict[str, dict[str, int]] = {}
        for j in range(size):
            num = start + j + 1
            sid = new_id()
            signal: Row = {"id": sid, "source": SOURCES[num % len(SOURCES)], "sourceId": None, "type": "error",
                           "severity": severities[j], "payload": {"n": num}, "issueId": None,
                           "projectId": projects[num % PROJECTS], "deliveryId": None, "createdAt": now}
            store.write_row(pipe, "signal", SIGNAL_FIELDS, sid, signal)
            zsets.setdefault(k.signal_index(), {})[sid] = num
            for name, field in FILTERS.items():
                zsets.setdefault(k.signal_index(field, str(signal[name])), {})[sid] = num
        for key, members in zsets.items():
            pipe.zadd(key, members)
        pipe.execute()


def requests(s: Seeded) -> list[tuple[str, str]]:
    return [
        ("list project + type", f"/api/issues?projectId={s.project}&type=task&limit=50"),
        ("list project + status + type", f"/api/issues?projectId={s.project}&status=todo&type=task&limit=10"),
        ("list project + rare label", f"/api/issues?projectId={s.project}&labelId={s.rare}&limit=50"),
        ("list project + common label (informative)", f"/api/issues?projectId={s.project}&labelId={s.common}&limit=50"),
        ("signals source + severity", "/api/signals?source=sentry&severity=low&limit=50"),
        ("signals source + severity + project", f"/api/signals?source=sentry&severity=low&projectId={s.project}&limit=10"),
        ("dashboard activity", "/api/dashboard/activity?limit=20"),
        ("issue detail (root)", f"/api/issues/{s.root}"),
        ("prompt context (preview)", f"/api/templates/preview/{s.preview}"),
    ]


def _commands(srv: Server, path: str, n: int = 20) -> float:
    """Redis commands per request (scripts' inner commands included), over ``n`` sequential requests."""
    def total() -> int:
        stats = srv.store.r.info("commandstats")
        return sum(int(v["calls"]) for name, v in stats.items() if name != "cmdstat_info")

    before = total()
    for _ in range(n):
        status, _ = srv.call(Request("GET", path))
        assert status == 200, (status, path)
    return (total() - before) / n


def run(bench: Bench) -> None:
    """Options: ``sizes`` (comma list, default 1000,100000)."""
    sizes = [int(x) for x in str(bench.options.get("sizes") or "1000,100000").split(",")]
    figures: dict[str, dict[int, tuple[Result, float]]] = {}
    for n in sizes:
        print(f"\n== {n:,} issues", flush=True)
        with bench.server() as srv:
            t0 = time.perf_counter()
            seeded = seed(srv.store, n)
            used = int(srv.store.r.info("memory")["used_memory"]) / 2**20
            print(f"  seeded {n:,} issues and {n:,} signals in {time.perf_counter() - t0:.1f}s "
                  f"(Redis used_memory {used:,.0f} MB)", flush=True)
            for name, path in requests(seeded):
                make: Callable[[int], Request] = lambda i, p=path: Request("GET", p)  # noqa: E731
                res = bench.record(bench.load(srv, f"{name} @{n:,}", make))
                figures.setdefault(name, {})[n] = (res, _commands(srv, path))
    small = min(sizes)
    for big in sorted(set(sizes) - {small}):
        _ratios(bench, figures, small, big)


def _ratios(bench: Bench, figures: dict[str, dict[int, tuple[Result, float]]], small: int, big: int) -> None:
    print(f"\n  per request, @{big:,} / @{small:,}: Redis commands, Redis CPU, server CPU, p50 latency", flush=True)
    for name, by_size in figures.items():
        (rs, cs), (rb, cb) = by_size[small], by_size[big]
        cmds = cb / cs
        redis_cpu = (rb.redis_cpu / rb.requests) / (rs.redis_cpu / rs.requests)
        detail = (f"Redis commands {cb:.0f} vs {cs:.0f}; Redis CPU {rb.redis_cpu * 1e6 / rb.requests:.0f} vs "
                  f"{rs.redis_cpu * 1e6 / rs.requests:.0f} us ({redis_cpu:.2f}x); server CPU {rb.cpu_ms:.2f} vs "
                  f"{rs.cpu_ms:.2f} ms ({rb.cpu_ms / rs.cpu_ms:.2f}x); p50 {rb.pct(0.5):.1f} vs {rs.pct(0.5):.1f} ms")
        bench.data.setdefault("cost", {}).setdefault(name, {})[f"{big}/{small}"] = {
            "commands": [cs, cb], "redis_cpu_ratio": redis_cpu, "cpu_ms": [rs.cpu_ms, rb.cpu_ms],
            "p50": [rs.pct(0.5), rb.pct(0.5)]}
        if "informative" in name:
            bench.note(f"{name} @{big:,}: Redis commands {cmds:.2f}x; {detail}")
        else:
            bench.ratio(f"{name}: Redis commands per request @{big:,} / @{small:,}", cmds, "<= 1.5", cmds <= 1.5,
                        detail)
