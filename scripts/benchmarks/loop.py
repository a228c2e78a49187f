"""Scheduling (issue 13): /next with 100k scheduled issues vs without, and the worst promotion call.

Targets: with 100,000 issues scheduled over the next day next to 100,000 ready ones,
``GET /api/dispatch/next`` throughput and p99 within 10% of the same server run without scheduled
issues (two servers, alternating rounds, the ready set topped up as in the dispatch scenario); and
moving 10,000 issues that fall due in the same second into the ready set costs no single script
call more than 5 ms of Redis time (SLOWLOG at threshold 0 on a private redis-server records every
EVALSHA's execution time; the claims promote one batch each, the worker's tick the rest).

Options: ``ready`` (default 100000), ``scheduled`` (default 100000), ``due`` (default 10000),
``parts`` (comma list of http, promote; default both).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.dispatch import BLOCKED_EVERY, _merge, contextlib_servers, seed, topped_up
from benchmarks.harness import Bench, Request, Result, private_redis, seed_issues
from loop.clock import FrozenClock
from loop.dispatch import scoring
from loop.runtime import build
from loop.settings import Settings
from loop.store import RedisStore, connect

DAY_MS = 86_400_000


def schedule(store: RedisStore, n: int, spread_ms: int, batch: int = 5000) -> None:
    """``n`` todo monitors with ``notBefore`` spread over the next ``spread_ms`` (0: all at now + 1 s),
    with their scheduled-set entries, as the issue hooks write them."""
    now = store.now()
    for start in range(0, n, batch):
        count = min(batch, n - start)
        rows = [{"title": f"Check {start + j}", "type": "monitor", "status": "todo", "priority": 2,
                 "notBefore": now + 1000 + (((start + j) * spread_ms) // n if spread_ms else 0)}
                for j in range(count)]
        written = seed_issues(store, rows, batch=batch)
        store.r.zadd(store.keys.dispatch_scheduled(),
                     {scoring.member(r["id"], None): r["notBefore"] for r in written})


def run(bench: Bench) -> None:
    parts = str(bench.options.get("parts") or "http,promote").split(",")
    if "http" in parts:
        http(bench, int(bench.options.get("ready") or 100_000), int(bench.options.get("scheduled") or 100_000))
    if "promote" in parts:
        promote(bench, int(bench.options.get("due") or 10_000))


def http(bench: Bench, ready: int, scheduled: int) -> None:
    print(f"\n== GET /api/dispatch/next with {scheduled:,} scheduled issues (due over a day) vs none, "
          f"{ready:,} ready (two servers, alternating rounds)", flush=True)
    with contextlib_servers(bench, 2) as (plain, sched):
        size = int(ready * BLOCKED_EVERY / (BLOCKED_EVERY - 1))
        for srv in (plain, sched):
            seed(srv.store, size)
        t0 = time.perf_counter()
        schedule(sched.store, scheduled, DAY_MS)
        print(f"  seeded {scheduled:,} scheduled issues in {time.perf_counter() - t0:.1f}s", flush=True)
        runs: dict[str, list[Result]] = {"plain": [], "scheduled": []}
        ratios: list[float] = []
        for r in range(1, bench.rounds + 1):
            got: dict[str, Result] = {}
            for name, srv in (("plain", plain), ("scheduled", sched)):
                with topped_up(srv.store, ready):
                    got[name] = bench.record(bench.load(srv, f"GET /api/dispatch/next {name} (round {r})",
                                                        lambda i: Request("GET", "/api/dispatch/next")))
                runs[name].append(got[name])
            ratios.append(got["scheduled"].rps / got["plain"].rps)
        med = statistics.median(ratios)
        bench.ratio("/next req/s with scheduled / without", med, ">= 0.9", med >= 0.9,
                    "median of rounds " + ", ".join(f"{x:.2f}" for x in ratios))
        a, b = _merge("plain", runs["plain"]), _merge("scheduled", runs["scheduled"])
        p99 = b.pct(0.99) / a.pct(0.99)
        bench.ratio("/next p99 with scheduled / without", p99, "<= 1.1", p99 <= 1.1,
                    f"p99 {b.pct(0.99):.2f} vs {a.pct(0.99):.2f} ms (rounds pooled)")
        left = int(sched.store.r.zcard(sched.store.keys.dispatch_scheduled()))
        bench.data.setdefault("loop", {})["http"] = {"plain": a.row(), "scheduled": b.row(), "still_scheduled": left}


def promote(bench: Bench, due: int) -> None:
    print(f"\n== {due:,} issues falling due in the same second: the worst script call (private redis-server)",
          flush=True)
    with private_redis() as url:
        clock = FrozenClock(int(time.time() * 1000))
        store = build(connect(url), Settings(namespace="bench-loop"), clock, prompts=False)
        seed(store, 100_000)
        schedule(store, due, 0)
        clock.advance(2)
        r = store.r
        r.config_set("slowlog-log-slower-than", 0)
        r.config_set("slowlog-max-len", 1_000_000)
        r.slowlog_reset()
        claims = 0
        t0 = time.perf_counter()
        while r.zcard(store.keys.dispatch_scheduled()) and claims < due:
            store.dispatch.claim("bench")
            claims += 1
        took = time.perf_counter() - t0
        entries: list[dict[str, Any]] = r.slowlog_get(1_000_000)
        r.config_set("slowlog-log-slower-than", 10_000)
        shas = {name: store.scripts[name].sha for name in ("dispatch_promote", "dispatch_claim")}
        calls = {name: sorted(int(e["duration"]) / 1000 for e in entries
                              if _text(e["command"]).upper().startswith(f"EVALSHA {sha.upper()}"))
                 for name, sha in shas.items()}
        every = sorted(calls["dispatch_promote"] + calls["dispatch_claim"])
        worst = every[-1] if every else 0.0
        moved = int(r.zcard(store.keys.dispatch_ready()))
        promote_ms = calls["dispatch_promote"] or [0.0]
        bench.ratio(f"worst script call while {due:,} fall due (ms of Redis time)", worst, "<= 5", worst <= 5,
                    f"{len(calls['dispatch_promote'])} promote calls (median {statistics.median(promote_ms):.2f}, "
                    f"p99 {promote_ms[int(len(promote_ms) * 0.99) - 1 if len(promote_ms) > 1 else 0]:.2f} ms) and "
                    f"{len(calls['dispatch_claim'])} claim calls over {claims} claims in {took:.2f}s; ready set "
                    f"now {moved:,}, scheduled left {r.zcard(store.keys.dispatch_scheduled())}")
        worst_claim = calls["dispatch_claim"][-1] if calls["dispatch_claim"] else 0.0
        bench.note(f"worst claim script {worst_claim:.2f} ms; worst promote script {promote_ms[-1]:.2f} ms")
        bench.data.setdefault("loop", {})["promote"] = {"worst_ms": worst, "claims": claims,
                                                        "promote_ms": promote_ms, "claim_ms": calls["dispatch_claim"]}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
