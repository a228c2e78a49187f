"""Keep-alive connections over gunicorn's workers: ``/next`` at C = 32 with and without ``--reuse-port``.

gunicorn's workers accept from one listening socket they share, and a keep-alive connection stays
with the worker that accepted it. Which worker wins an accept is a race, so a burst of connections
(an agent fleet starting, a load generator) can land unevenly: all 32 on one of the two workers was
seen here, which halves the server's capacity and doubles latency for as long as the connections
live. With ``--reuse-port`` (gunicorn >= 21) each worker listens on a socket of its own
(``SO_REUSEPORT``) and the kernel spreads new connections over them by a hash of their addresses.

One private Redis is seeded once with ``size`` issues (``dispatch.seed``: 10% blocked, a
400-character description) and kept topped up; then, in ``--rounds`` alternating rounds, a fresh
server per configuration serves ``GET /api/dispatch/next`` (claim + prompt) to ``c`` keep-alive
clients for ``--duration`` seconds: req/s, p50, p99, server CPU per request, and the connections per
worker (sampled mid-run with ``ss``).

Options: ``size`` (default 1000000), ``c`` (default 32), ``configs`` (comma list of
``name=flags``, flags joined by ``+``; default ``shared=,reuseport=--reuse-port``: both with
``bench.py``'s worker class and threads).
"""

from __future__ import annotations

import random
import re
import shutil
import statistics
import subprocess
import threading
import time

from benchmarks.dispatch import BLOCKED_EVERY, seed, topped_up
from benchmarks.foundation import _text
from benchmarks.harness import Bench, Request, Server
from loop.clock import SystemClock
from loop.runtime import build
from loop.settings import Settings
from loop.store import RedisStore, connect


def run(bench: Bench) -> None:
    size = int(bench.options.get("size") or 1_000_000)
    c = int(bench.options.get("c") or 32)
    configs = _configs(str(bench.options.get("configs") or "shared=,reuseport=--reuse-port"))
    namespace = f"bench-balance-{random.randrange(1 << 32):08x}"
    # Only --reuse-port is added on top: the worker class and threads stay bench.py's (the Procfile's).
    base = [a for a in bench.gunicorn_args if a != "--reuse-port"]
    store = build(connect(bench.redis_url), Settings(api_key="loop_" + "b" * 64, redis_url=bench.redis_url,
                                                     namespace=namespace), SystemClock())
    t0 = time.perf_counter()
    seed(store, size, _text(random.Random(12), 400))
    print(f"\n== {size:,} issues (seeded in {time.perf_counter() - t0:.1f}s), C = {c}", flush=True)
    try:
        _rounds(bench, store, namespace, size, c, base, configs)
    finally:
        store.delete_namespace()


def _rounds(bench: Bench, store: RedisStore, namespace: str, size: int, c: int, base: list[str],
            configs: dict[str, list[str]]) -> None:
    ready = int(size * (BLOCKED_EVERY - 1) / BLOCKED_EVERY)
    rows: dict[str, list[tuple[float, float, float, float, int]]] = {name: [] for name in configs}
    for rnd in range(1, bench.rounds + 1):
        for name, flags in configs.items():
            server = Server(bench.redis_url, bench.workers, namespace, [*base, *flags]).start()
            try:
                with topped_up(store, ready):
                    split: list[int] = []
                    sampler = threading.Timer(bench.warmup + bench.duration / 2, _sample, (server, split))
                    sampler.start()
                    result = bench.record(bench.load(server, f"/next C={c} {name} round {rnd}",
                                                     lambda i: Request("GET", "/api/dispatch/next"), concurrency=c))
                    sampler.join()
            finally:
                server.stop(keep_data=True)
            most = max(split) if split else -1
            rows[name].append((result.rps, result.pct(0.50), result.pct(0.99), result.cpu_ms, most))
            print(f"  round {rnd} {name:<10} {result.rps:7.0f} req/s  p50 {result.pct(0.50):6.1f} ms  "
                  f"p99 {result.pct(0.99):6.1f} ms  cpu {result.cpu_ms:.2f} ms/req  connections per worker "
                  f"{sorted(split, reverse=True) or '?'}  load {_load()}", flush=True)
    print(f"\n| /next at {size:,}, C = {c} | req/s (median) | p99 ms (median, max) | most connections on one worker |")
    print("|---|---|---|---|")
    for name, got in rows.items():
        print(f"| {name} | {statistics.median(r[0] for r in got):,.0f} | {statistics.median(r[2] for r in got):.1f}, "
              f"{max(r[2] for r in got):.1f} | {', '.join(str(r[4]) for r in got)} of {c} |")
    bench.data["balance"] = {name: [dict(zip(("rps", "p50_ms", "p99_ms", "cpu_ms", "most_on_one_worker"), r,
                                             strict=True)) for r in got] for name, got in rows.items()}


def _configs(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in text.split(","):
        name, _, flags = item.partition("=")
        out[name] = [f for f in flags.split("+") if f]
    return out


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def _sample(srv: Server, into: list[int]) -> None:
    into.extend(_split(srv))


def _split(srv: Server) -> list[int]:
    """Established connections to the server's port, per process (``ss``; empty if it is missing)."""
    if shutil.which("ss") is None:
        return []
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{srv.port} )"],
                         capture_output=True, text=True, check=False).stdout
    counts: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[pid] = counts.get(pid, 0) + 1
    return list(counts.values())
