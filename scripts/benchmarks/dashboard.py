"""Dashboard pages: server-side p95 of every page at a 100k-issue backlog (target <= 50 ms each).

One server gets the backlog of the ``cost`` scenario (``-o size=100000``; issues, signals, projects,
labels, sessions, goals, seeded straight into Redis), plus a dispatch queue: the newest
``QUEUED`` todo issues are re-entered through the store so the queue page has rows to score
(``BLOCKED`` of them blocked by others: the blocked list), and a goal gets readings. Each
page is then fetched by one client thread (latency, not throughput) with a dashboard session
cookie signed like a login would (api/ui/session.py), and its p95 checked against 50 ms.
The ratio against ``-o small=1000`` shows that no page grows with the backlog.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable

from api.ui.session import COOKIE, Signer
from benchmarks.cost import Seeded, seed
from benchmarks.harness import Bench, Request, Result, Server
from loop.store.apikeys import BOOTSTRAP_NAME
from loop.store.goals import Reading

TARGET_MS = 50.0
QUEUED = 200
BLOCKED = 60
READINGS = 200


class CookieServer(Server):
    """A server whose load generator sends a dashboard session cookie instead of a Bearer key."""

    cookie = ""

    def call(self, req: Request, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(req.method, req.path, headers={"Cookie": f"{COOKIE}={self.cookie}", "Accept": "text/html"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            if own:
                conn.close()


def pages(s: Seeded, goal: str) -> list[tuple[str, str]]:
    return [
        ("overview", "/ui"),
        ("counters fragment", "/ui/fragments/counters"),
        ("queue", "/ui/queue"),
        ("issues", "/ui/issues"),
        ("issues project + status", f"/ui/issues?projectId={s.project}&status=todo"),
        ("issues page 100", "/ui/issues?offset=5000"),
        ("issue detail (root)", f"/ui/issues/{s.root}"),
        ("issue detail (preview)", f"/ui/issues/{s.preview}"),
        ("signals", "/ui/signals"),
        ("goals and projects", "/ui/goals"),
        ("goal with readings", f"/ui/goals/{goal}"),
        ("prompts", "/ui/prompts"),
        ("operations", "/ui/ops"),
    ]


def _queue(srv: Server) -> str:
    """Give the queue page rows: re-enter the newest todo issues through the store's hooks, block
    ``BLOCKED`` of them (the blocked list's page) and give a goal ``READINGS`` readings; the goal's id."""
    ids, _ = srv.store.issues.list({"status": ["todo"]}, QUEUED, 0)
    for row in ids:
        srv.store.issues.update(row["id"], {"priority": (row["priority"] or 0) % 4 + 1})
    for blocker, blocked in zip(ids[:BLOCKED], ids[BLOCKED:2 * BLOCKED], strict=True):
        srv.store.relations.create(blocker["id"], "blocks", blocked["id"])
    goal = srv.store.goals.create({"title": "Faster checkout", "metric": "p95_ms", "targetValue": 300})
    now = srv.store.now()
    for n in range(READINGS):
        srv.store.goals.record(goal["id"], Reading(value=900 - n, at=now - (READINGS - n) * 60_000))
    return str(goal["id"])


def run(bench: Bench) -> None:
    """Options: ``size`` (default 100000), ``small`` (default 1000)."""
    sizes = [int(bench.options.get("small") or 1000), int(bench.options.get("size") or 100_000)]
    figures: dict[str, dict[int, Result]] = {}
    for n in sizes:
        print(f"\n== {n:,} issues", flush=True)
        srv = CookieServer(bench.redis_url, bench.workers).start()
        try:
            t0 = time.perf_counter()
            seeded = seed(srv.store, n)
            goal = _queue(srv)
            print(f"  seeded in {time.perf_counter() - t0:.1f}s", flush=True)
            srv.cookie, _ = Signer(srv.store).issue(BOOTSTRAP_NAME)
            for name, path in pages(seeded, goal):
                make: Callable[[int], Request] = lambda i, p=path: Request("GET", p)  # noqa: E731
                figures.setdefault(name, {})[n] = bench.record(bench.load(srv, f"{name} @{n:,}", make, concurrency=1))
        finally:
            srv.stop()
    small, big = sizes
    for name, by_size in figures.items():
        p95 = by_size[big].pct(0.95)
        detail = f"p95 {p95:.1f} ms @{big:,} vs {by_size[small].pct(0.95):.1f} ms @{small:,}"
        bench.ratio(f"dashboard {name}: p95 ms @{big:,}", p95, f"<= {TARGET_MS:.0f}",
                    p95 <= TARGET_MS and by_size[big].errors == 0, detail)
