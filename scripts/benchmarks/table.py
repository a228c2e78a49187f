"""The issue 12 table: every scenario at 1k, 100k and 1M issues, at C = 8 and 32, for Loop.

One stock server (``api.app:app``, prompts rendered) per backlog size, seeded straight into Redis
by ``dispatch.seed`` (todo issues, 10% blocked, each with a ~400-character description), and kept
at its size while claims drain it. Per size and concurrency: ``GET /health``, ``GET /api/issues?
limit=50``, ``GET /api/dispatch/queue?limit=50``, ``GET /api/dispatch/next`` (claim + prompt), the
claim/re-open cycle (claim, then ``PATCH`` back to ``todo`` with the claim token; claims/s over
``cycle_seconds``, split in ``cycle_segments`` to show whether it stays flat), ``POST /api/issues``
and ``POST /api/signals``. The table printed at the end has one row per scenario: req/s (p99) per
size. The gunicorn worker class and threads come from ``bench.py --worker-class/--threads``.

Options: ``sizes`` (default 1000,100000,1000000), ``concurrencies`` (default 8,32),
``only`` (comma list of scenario keys: health,list,queue,next,cycle,create,signal),
``cycle_seconds`` (default 3x ``--duration``), ``cycle_segments`` (default 3).
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from typing import Any

import orjson

from benchmarks.dispatch import BLOCKED_EVERY, seed, topped_up
from benchmarks.foundation import _text
from benchmarks.harness import Bench, Request, Server

SCENARIOS = {
    "health": "GET /health",
    "list": "GET /api/issues?limit=50",
    "queue": "GET /api/dispatch/queue?limit=50",
    "next": "GET /api/dispatch/next (claim + prompt)",
    "cycle": "claim, then PATCH back to todo (claims/s)",
    "create": "POST /api/issues",
    "signal": "POST /api/signals",
}

def run(bench: Bench) -> None:
    sizes = [int(x) for x in str(bench.options.get("sizes") or "1000,100000,1000000").split(",")]
    conc = [int(x) for x in str(bench.options.get("concurrencies") or "8,32").split(",")]
    only = str(bench.options.get("only") or ",".join(SCENARIOS)).split(",")
    cycle_seconds = float(bench.options.get("cycle_seconds") or 3 * bench.duration)
    segments = int(bench.options.get("cycle_segments") or 3)
    rng = random.Random(12)
    description = _text(rng, 400)
    cells: dict[tuple[str, int, int], str] = {}
    for size in sizes:
        with bench.server() as srv:
            t0 = time.perf_counter()
            seed(srv.store, size, description)
            print(f"\n== {size:,} issues (seeded in {time.perf_counter() - t0:.1f}s)", flush=True)
            project = srv.store.projects.create({"name": "bench"})["id"]
            bodies = [{"title": _text(rng, 60), "description": description, "type": "task", "status": "backlog",
                       "priority": rng.randint(0, 4), "projectId": project} for _ in range(1000)]
            ready = int(size * (BLOCKED_EVERY - 1) / BLOCKED_EVERY)
            for c in conc:
                for key in only:
                    name = f"{SCENARIOS[key]} @{size:,} C={c}"
                    if key == "cycle":
                        with topped_up(srv.store, ready):
                            rates, p99 = cycle(srv, cycle_seconds, c, segments)
                        print(f"  {name:<60} claims/s per {cycle_seconds / segments:.1f}s segment: "
                              + ", ".join(f"{r:,.0f}" for r in rates) + f"  p99 {p99:.2f} ms", flush=True)
                        cells[(key, size, c)] = f"{rates[0]:,.0f} -> {rates[-1]:,.0f} ({p99:.1f} ms)"
                        bench.data.setdefault("table", {})[f"{key}@{size}@C{c}"] = {"segments": rates, "p99_ms": p99}
                        continue
                    make = _maker(key, bodies)
                    if key == "next":
                        with topped_up(srv.store, ready):
                            result = bench.record(bench.load(srv, name, make, concurrency=c))
                    else:
                        result = bench.record(bench.load(srv, name, make, concurrency=c))
                    cells[(key, size, c)] = f"{result.rps:,.0f} ({result.pct(0.99):.1f} ms)"
                    bench.data.setdefault("table", {})[f"{key}@{size}@C{c}"] = result.row()
    for c in conc:
        print(f"\n| scenario, C={c}, req/s (p99) | " + " | ".join(f"Loop {s:,}" for s in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for key in only:
            print(f"| {SCENARIOS[key]} | " + " | ".join(cells.get((key, s, c), "") for s in sizes) + " |")

def _maker(key: str, bodies: list[dict[str, Any]]) -> Any:
    if key == "create":
        return lambda i: Request("POST", "/api/issues", bodies[i % len(bodies)])
    if key == "signal":
        return lambda i: Request("POST", "/api/signals", {
            "source": "sentry", "type": "error", "severity": "low",
            "payload": {"title": f"TypeError in handler {i % 500}", "fingerprint": f"fp-{i % 500}"}})
    path = {"health": "/health", "list": "/api/issues?limit=50", "queue": "/api/dispatch/queue?limit=50",
            "next": "/api/dispatch/next"}[key]
    return lambda i: Request("GET", path)

def cycle(srv: Server, seconds: float, concurrency: int, segments: int) -> tuple[list[float], float]:
    """Closed loop of claim + PATCH back to todo; claims/s per segment and the p99 of a cycle (ms)."""
    start = time.perf_counter()
    stop = start + seconds
    done: list[float] = []  # completion times of cycles
    lat: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        mine: list[float] = []
        took: list[float] = []
        while (t0 := time.perf_counter()) < stop:
            try:
                status, body = srv.call(Request("GET", "/api/dispatch/next"), conn)
                if status != 200:
                    continue
                claim = orjson.loads(body)
                headers = {"X-Loop-Claim-Token": claim["claim"]["token"]}
                status = _patch(srv, conn, claim["issue"]["id"], headers)
            except (OSError, http.client.HTTPException):
                conn.close()
                continue
            if status == 200:
                now = time.perf_counter()
                mine.append(now)
                took.append(now - t0)
        conn.close()
        with lock:
            done.extend(mine)
            lat.extend(took)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    width = seconds / segments
    rates = [sum(1 for x in done if start + i * width <= x < start + (i + 1) * width) / width for i in range(segments)]
    ordered = sorted(lat)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000 if ordered else float("nan")
    return rates, p99

def _patch(srv: Server, conn: http.client.HTTPConnection, issue_id: str, extra: dict[str, str]) -> int:
    headers = {"Authorization": f"Bearer {srv.api_key}", "Content-Type": "application/json", **extra}
    conn.request("PATCH", f"/api/issues/{issue_id}", body=b'{"status":"todo"}', headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status
