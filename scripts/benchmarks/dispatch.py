"""Dispatch: GET /api/dispatch/next vs /health at 1k, 100k and 1M issues, and the Lua claim alone.

Targets (issue 4): HTTP dispatch (prompt rendering detached) >= 50% of /health throughput on the
same server in the same run; p99 of /next at 1M within 1.5x of p99 at 1k; the Lua claim alone
>= 10,000 claims/s.

Backlogs are seeded directly in Redis by a Lua loop (10,000 issues per call): minimal issue
hashes with the real layout of what a claim reads and moves (issue hash, the id string, the live
and status bitmaps, the ready sets with real scores), 10% of them blocked (a blocked count in their dispatch
state, hence absent from the ready set, as the indexes keep them). While /next is measured a
background thread tops the ready set back up to its size every 50 ms, so the backlog stays at
1k / 100k / 1M eligible issues however many are claimed.

Options: ``parts`` (comma list of lua, http, render; default lua,http), ``sizes`` (comma list,
default 1000,100000,1000000), ``lua_claims`` (default 20000); ``render=yes`` (or the ``render``
part) adds /next with prompt rendering (the stock app) at the smallest size, for information.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import ROOT, Bench, Request, Result, Server, private_redis
from loop.clock import SystemClock
from loop.dispatch import scoring
from loop.runtime import build
from loop.settings import Settings
from loop.store import RedisStore, connect

TYPES = ("task", "signal", "plan", "hypothesis", "monitor")
BLOCKED_EVERY = 10  # 10% blocked
BATCH = 5000

# Seeds ARGV[3..] issues; bench tooling, not part of Loop (its scripts live in loop/lua/).
SEED_LUA = """
-- KEYS[1] string bits:issues, KEYS[2] string bits:issues:status:todo, KEYS[3] zset dispatch:ready,
-- KEYS[4] string issues:ids,
-- KEYS[4 + i] hash issue:<id i>, KEYS[4 + n + i] hash dispatch:issue:<id i> (i = 1..n)
-- ARGV[1] first issue number, ARGV[2] now (ms), ARGV[3] description ('' for none), ARGV[3 + i] id i
local first, now, desc = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local n = #ARGV - 3
local types = {'task', 'signal', 'plan', 'hypothesis', 'monitor'}
local tbonus = {task = 20, signal = 50, plan = 30, hypothesis = 40, monitor = 10}
local pweight = {[0] = 10, 100, 75, 50, 25}
for i = 1, n do
  local id, num = ARGV[3 + i], first + i - 1
  local t, p = types[num % 5 + 1], (num * 7) % 5
  local created = now - (num % 10000) * 60000
  redis.call('HSET', KEYS[4 + i], 'id', id, 'number', num, 'title', 'Bench issue ' .. num, 'type', t,
    'status', 'todo', 'priority', p, 'createdAt', created, 'updatedAt', created)
  if desc ~= '' then redis.call('HSET', KEYS[4 + i], 'description', desc) end
  redis.call('SETBIT', KEYS[1], num, 1)
  redis.call('SETBIT', KEYS[2], num, 1)
  redis.call('SETRANGE', KEYS[4], (num - 1) * 24, id)
  if num % 10 == 0 then
    redis.call('HSET', KEYS[4 + n + i], 'blocked', 1)
  else
    local score = pweight[p] + tbonus[t] - created / 86400000
    redis.call('ZADD', KEYS[3], string.format('%.17g', score), id .. '|')
  end
end
return n
"""


def _ids(n: int) -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    raw = secrets.token_bytes(n * 24)
    return ["abcdefghijklmnopqrstuvwxyz"[raw[i * 24] % 26] + "".join(alphabet[b % 36] for b in raw[i * 24 + 1:(i + 1) * 24])
            for i in range(n)]


def seed(store: RedisStore, n: int, description: str = "") -> int:
    """Add ``n`` issues (90% eligible), each with ``description`` if given; returns how many
    entered the ready set."""
    k = store.keys
    script = store.r.register_script(SEED_LUA)
    eligible = 0
    for start in range(0, n, BATCH):
        ids = _ids(min(BATCH, n - start))
        first = int(store.r.incrby(k.issue_seq(), len(ids))) - len(ids) + 1
        keys = [k.issue_bits(), k.issue_bits("status", "todo"), k.dispatch_ready(), k.issue_ids(),
                *[k.issue(i) for i in ids], *[k.dispatch_state(i) for i in ids]]
        script(keys=keys, args=[first, store.now(), description, *ids])
        eligible += sum(1 for j in range(len(ids)) if (first + j) % BLOCKED_EVERY)
    return eligible


class DispatchServer(Server):
    """The stock benchmark server, optionally on the app without prompt rendering."""

    def __init__(self, redis_url: str, workers: int, render: bool, gunicorn_args: list[str] | None = None) -> None:
        super().__init__(redis_url, workers, gunicorn_args=gunicorn_args or [])
        self.render = render

    def app_args(self) -> list[str]:
        if self.render:
            return super().app_args()
        return ["benchmarks._dispatch_app:app", "--pythonpath", str(ROOT / "scripts")]


@contextmanager
def server(bench: Bench, render: bool = False) -> Iterator[Server]:
    srv = DispatchServer(bench.redis_url, bench.workers, render, bench.gunicorn_args)
    try:
        yield srv.start()
    finally:
        srv.stop()


@contextmanager
def topped_up(store: RedisStore, size: int) -> Iterator[None]:
    """Keep the ready set at ``size`` while the block runs (claims drain it)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.05):
            deficit = size - int(store.r.zcard(store.keys.dispatch_ready()))
            if deficit > 0:
                seed(store, int(deficit * 1.12) + 1)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def _merge(name: str, parts: list[Result]) -> Result:
    return Result(name, sum(p.requests for p in parts), sum(p.seconds for p in parts),
                  [x for p in parts for x in p.latencies], sum(p.errors for p in parts),
                  {s: sum(p.statuses.get(s, 0) for p in parts) for p in parts for s in p.statuses},
                  sum(p.app_cpu for p in parts), sum(p.redis_cpu for p in parts))


def run(bench: Bench) -> None:
    sizes = [int(s) for s in str(bench.options.get("sizes") or "1000,100000,1000000").split(",")]
    parts = str(bench.options.get("parts") or "lua,http").split(",")
    if "lua" in parts:
        lua_claim(bench, int(bench.options.get("lua_claims") or 20_000))
    if "http" in parts:
        http(bench, sizes)
    if "render" in parts or str(bench.options.get("render", "no")).lower() in ("1", "yes", "true"):
        with_rendering(bench, min(sizes))


# ---------------------------------------------------------------------------- HTTP
def http(bench: Bench, sizes: list[int]) -> None:
    print(f"\n== GET /api/dispatch/next vs GET /health at {', '.join(f'{s:,}' for s in sizes)} issues "
          "(one server per size, prompt rendering detached, alternating rounds)", flush=True)
    with contextlib_servers(bench, len(sizes)) as servers:
        for size, srv in zip(sizes, servers, strict=True):
            t0 = time.perf_counter()
            eligible = seed(srv.store, size)
            took = time.perf_counter() - t0
            print(f"  seeded {size:,} issues ({eligible:,} eligible, {size - eligible:,} blocked) in {took:.1f}s",
                  flush=True)
        nexts: dict[int, list[Result]] = {s: [] for s in sizes}
        ratios: dict[int, list[float]] = {s: [] for s in sizes}
        health_all: dict[int, list[Result]] = {s: [] for s in sizes}
        for r in range(1, bench.rounds + 1):
            for size, srv in zip(sizes, servers, strict=True):
                ready = int(size * (BLOCKED_EVERY - 1) / BLOCKED_EVERY)
                health = bench.record(bench.load(srv, f"GET /health @{size:,} (round {r})",
                                                 lambda i: Request("GET", "/health")))
                with topped_up(srv.store, ready):
                    nxt = bench.record(bench.load(srv, f"GET /api/dispatch/next @{size:,} (round {r})",
                                                  lambda i: Request("GET", "/api/dispatch/next")))
                health_all[size].append(health)
                nexts[size].append(nxt)
                ratios[size].append(nxt.rps / health.rps)
                if nxt.statuses.get(204):
                    bench.note(f"{nxt.statuses[204]} responses were 204 (backlog drained) @{size:,} round {r}")
        for size in sizes:
            med = statistics.median(ratios[size])
            n, h = _merge("next", nexts[size]), _merge("health", health_all[size])
            bench.ratio(f"/next req/s / /health req/s @{size:,}", med, ">= 0.5", med >= 0.5,
                        "median of rounds " + ", ".join(f"{x:.2f}" for x in ratios[size])
                        + f"; server CPU per request {n.cpu_ms:.3f} vs {h.cpu_ms:.3f} ms")
            bench.data.setdefault("dispatch", {})[str(size)] = {"next": n.row(), "health": h.row()}
        small, big = min(sizes), max(sizes)
        at_small, at_big = _merge("small", nexts[small]), _merge("big", nexts[big])
        ratio = at_big.pct(0.99) / at_small.pct(0.99)
        bench.ratio(f"/next p99 @{big:,} / p99 @{small:,}", ratio, "<= 1.5", ratio <= 1.5,
                    f"p99 {at_big.pct(0.99):.2f} vs {at_small.pct(0.99):.2f} ms, p50 {at_big.pct(0.5):.2f} vs "
                    f"{at_small.pct(0.5):.2f} ms (rounds pooled); server CPU per claim {at_big.cpu_ms:.3f} vs "
                    f"{at_small.cpu_ms:.3f} ms")


@contextmanager
def contextlib_servers(bench: Bench, n: int) -> Iterator[list[Server]]:
    started: list[DispatchServer] = []
    try:
        for _ in range(n):
            started.append(DispatchServer(bench.redis_url, bench.workers, render=False))
            started[-1].start()
        yield list(started)
    finally:
        for srv in started:
            srv.stop()


def with_rendering(bench: Bench, size: int) -> None:
    print(f"\n== GET /api/dispatch/next with prompt rendering (stock app) @{size:,} (informative)", flush=True)
    with server(bench, render=True) as srv:
        seed(srv.store, size)
        ready = int(size * (BLOCKED_EVERY - 1) / BLOCKED_EVERY)
        with topped_up(srv.store, ready):
            bench.record(bench.load(srv, f"GET /api/dispatch/next, rendering @{size:,}",
                                    lambda i: Request("GET", "/api/dispatch/next")))


# ---------------------------------------------------------------------------- Lua alone
def lua_claim(bench: Bench, claims: int) -> None:
    """The claim script alone on a private redis-server, 100k+ issue backlog: every EVALSHA is
    packed beforehand (each with its own candidate window, so none loses a race), then sent
    pipelined in chunks of 500 on one connection; wall clock from the first byte sent to the
    last reply read."""
    print(f"\n== The Lua claim alone: {claims:,} claims, pre-packed pipelined EVALSHA, private redis-server",
          flush=True)
    with private_redis() as url:
        store = build(connect(url), Settings(namespace="bench-lua"), SystemClock())
        size = max(100_000, claims * 2)
        seed(store, size)
        k = store.keys
        sha = store.r.script_load(store.scripts["dispatch_claim"].script)
        fixed = [k.dispatch_ready(), k.dispatch_ready(), k.dispatch_leases(), k.issue_bits("status", "todo"),
                 k.issue_bits("status", "in_progress"), k.counts("project_status"), k.issue_roots()]
        window = 8
        members = store.r.zrevrange(k.dispatch_ready(), 0, claims + window)
        now = store.now()
        conn = store.r.connection_pool.get_connection()
        chunks: list[list[bytes]] = []
        for start in range(0, claims, 500):
            packed: list[bytes] = []
            for j in range(start, min(claims, start + 500)):
                cands = members[j:j + window]
                keys = [*fixed, k.session(f"s{j}"), k.counts("project_status_type"), k.dispatch_scheduled()]
                for m in cands:
                    iid = scoring.parse_member(m)[0]
                    keys += [k.issue(iid), k.dispatch_state(iid), k.dispatch_ready(), k.issue_sessions(iid)]
                packed += conn.pack_command("EVALSHA", sha, len(keys), *keys, now, now + 900_000, f"s{j}", "bench",
                                            "digest", window, 0, "0", "brief", "0", len(cands), *cands)
            chunks.append(packed)
        info0 = store.r.info("commandstats").get("cmdstat_evalsha", {})
        cpu0 = _redis_cpu(store)
        ok, lat = 0, []
        t0 = time.perf_counter()
        for n, packed in enumerate(chunks):
            c0 = time.perf_counter()
            conn.send_packed_command(packed, check_health=False)
            count = min(500, claims - n * 500)
            for _ in range(count):
                ok += conn.read_response()[0] == "ok"
            lat.append((time.perf_counter() - c0) / count)
        seconds = time.perf_counter() - t0
        store.r.connection_pool.release(conn)
        info1 = store.r.info("commandstats").get("cmdstat_evalsha", {})
        redis_s = _redis_cpu(store) - cpu0
        usec = (int(info1.get("usec", 0)) - int(info0.get("usec", 0))) / max(1, claims)
        bench.record(Result(f"Lua claim @{size:,} (pre-packed EVALSHA, 1 connection)", ok, seconds, lat,
                            claims - ok, {}, 0.0, redis_s))
        bench.ratio("Lua claims/s (wall clock: send, execute, read replies)", ok / seconds, ">= 10000",
                    ok / seconds >= 10_000, f"{ok:,} of {claims:,} claims in {seconds:.2f}s")
        capacity = 1e6 / usec if usec else 0.0
        bench.ratio("Lua claims/s per Redis CPU second (1e6 / usec per EVALSHA)", capacity, ">= 10000",
                    capacity >= 10_000, f"{usec:.1f} us per claim inside Redis (INFO commandstats); "
                    f"Redis process CPU {redis_s * 1e6 / max(1, claims):.1f} us per claim")
        store.r.close()


def _redis_cpu(store: RedisStore) -> float:
    info: dict[str, Any] = store.r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
