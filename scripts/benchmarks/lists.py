"""Issue 12's list target: ``GET /api/issues?limit=50`` (and the queue preview) against base trees, paired.

Servers of several source trees side by side on one private Redis (``claims.TreeServer``), each
in its own namespace seeded with the same backlog (``dispatch.seed``: todo issues, 10% blocked, a
400-character description), measured in alternating rounds so the box's load hits every tree
alike. Per backlog size and round, for each tree: the list (and ``queue``: the dispatch queue
preview) closed loop at C = ``c`` for ``--duration`` seconds after a 0.5-s warm-up; pages/s (200
answers only; any other is printed), p99, and gunicorn + Redis CPU per page (what the load of
the box barely moves). The ratio per round is
``new / base`` (the first tree is the base, the last is new); the figure is their median.

Options: ``trees`` (comma list of ``name=path[:sync]``, as ``claims``; default ``new=<this tree>``),
``sizes`` (default 1000,1000000), ``c`` (default 8), ``only`` (comma list of list,queue; default both),
``spread`` (default 1: every request reads the first page; N: each reads one of N pages spread
evenly over the backlog, in a pseudo-random order, so a process rarely serves the same page
twice in a row: the cold case of the row memo and the page hint).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from benchmarks.claims import TreeServer, _cpu_per, _load
from benchmarks.dispatch import seed
from benchmarks.foundation import _text
from benchmarks.harness import ROOT, Bench, Request, Server, _drive

PATHS = {"list": "/api/issues?limit=50", "queue": "/api/dispatch/queue?limit=50"}


def _steady(srv: Server, make: Any, c: int, seconds: float) -> dict[str, float]:
    """``claims._steady``, plus the count of answers that were not 200 (a failure is no page)."""
    _drive(srv, make, 0.5, c)
    before = srv.cpu()
    lat, statuses, took = _drive(srv, make, seconds, c)
    ok = statuses.get(200, 0)
    app, red = _cpu_per(srv, before, ok)
    lat.sort()
    return {"rps": ok / took, "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1000, "app_ms": app, "redis_ms": red,
            "errors": len(lat) - ok}


def run(bench: Bench) -> None:
    trees = [t.split("=", 1) for t in str(bench.options.get("trees") or f"new={ROOT}").split(",")]
    sizes = [int(x) for x in str(bench.options.get("sizes") or "1000,1000000").split(",")]
    c = int(bench.options.get("c") or 8)
    only = str(bench.options.get("only") or "list,queue").split(",")
    spread = int(bench.options.get("spread") or 1)
    description = _text(random.Random(12), 400)
    for size in sizes:
        servers: dict[str, Server] = {}
        try:
            for name, spec in trees:
                root, _, mode = spec.partition(":")
                gargs = ["--worker-class", "sync"] if mode == "sync" else bench.gunicorn_args
                srv = TreeServer(root, bench.redis_url, bench.workers, gunicorn_args=gargs).start()
                servers[name] = srv
                t0 = time.perf_counter()
                seed(srv.store, size, description)
                print(f"  {size:,} issues seeded for {name} in {time.perf_counter() - t0:.1f} s", flush=True)
            for key in only:
                rows: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
                for r in range(1, bench.rounds + 1):
                    for name, srv in servers.items():
                        load = _load()
                        pages = min(spread, max(1, (size - 50) // 50 + 1))
                        step = (size - 50) // max(1, pages - 1)
                        res = _steady(srv, lambda i, p=PATHS[key], n=pages, st=step: Request(
                            "GET", f"{p}&offset={(i * 7919) % n * st}"), c, bench.duration)
                        res["load"] = load
                        rows[name].append(res)
                        print(f"  {size:>9,} {key:<5} round {r} {name:<8} {res['rps']:>7,.0f} req/s  p99 "
                              f"{res['p99_ms']:>6.1f} ms  CPU/page {res['app_ms']:.2f} app + {res['redis_ms']:.2f} "
                              f"Redis = {res['app_ms'] + res['redis_ms']:.2f} ms  load {load}"
                              + (f"  NOT 200: {res['errors']:.0f}" if res["errors"] else ""), flush=True)
                base, new = trees[0][0], trees[-1][0]
                per_round = [n["rps"] / b["rps"] for b, n in zip(rows[base], rows[new], strict=True)]
                cpu = [(b["app_ms"] + b["redis_ms"]) / (n["app_ms"] + n["redis_ms"])
                       for b, n in zip(rows[base], rows[new], strict=True)]
                for name, rs in rows.items():
                    print(f"  {size:>9,} {key:<5} median {name:<8} "
                          f"{statistics.median(x['rps'] for x in rs):>7,.0f} req/s  CPU/page "
                          f"{statistics.median(x['app_ms'] + x['redis_ms'] for x in rs):.2f} ms", flush=True)
                ratio = statistics.median(per_round)
                bench.data.setdefault("lists", {}).setdefault(str(size), {})[key] = rows
                detail = ("rounds " + ", ".join(f"{x:.2f}" for x in per_round)
                          + f"; CPU per page {statistics.median(cpu):.2f}x less")
                if key == "list":
                    bench.ratio(f"{PATHS[key]} at {size:,}: {new} / {base} req/s", ratio, ">= 1.5", ratio >= 1.5, detail)
                else:
                    bench.note(f"{PATHS[key]} at {size:,}: {new} / {base} req/s {ratio:.2f} ({detail})")
        finally:
            for srv in servers.values():
                srv.stop()
