"""Issue 18: create + claim throughput on a 3-master Redis Cluster, 1 vs 3 namespaces driven at once.

Starts its own cluster (tests/cluster_server.py) and drives each namespace from its own process
(``--concurrency`` threads each, in-process store calls: no HTTP), for ``--duration`` seconds after
``--warmup``: each operation creates a todo issue and claims one. Reports the aggregate operations per
second and each namespace's p50/p95 latency. One namespace is one slot on one master, so with masters
and cores to spare the aggregate grows with namespaces while each namespace's latency stays flat.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench

ROOT = Path(__file__).resolve().parents[2]


def _drive(url: str, namespace: str, threads: int, warmup: float, duration: float, out: Any) -> None:
    sys.path.insert(0, str(ROOT))
    from loop.clock import SystemClock
    from loop.errors import Conflict
    from loop.runtime import build
    from loop.settings import Settings
    from loop.store import connect

    store = build(connect(url), Settings(namespace=namespace), SystemClock(), prompts=False)
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration

    def work(agent: str) -> None:
        mine: list[float] = []
        while (now := time.monotonic()) < stop_at:
            store.issues.create({"title": "bench", "type": "task", "status": "todo"})
            with contextlib.suppress(Conflict):  # contended past LOOP_CLAIM_TIMEOUT_MS: an agent retries
                store.dispatch.claim(agent)
            if now >= measure_from:
                mine.append((time.monotonic() - now) * 1000)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=work, args=(f"a{i}",)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    store.delete_namespace()
    out.put((namespace, latencies))


def _round(url: str, namespaces: list[str], bench: Bench) -> dict[str, Any]:
    queue: Any = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_drive, args=(url, ns, bench.concurrency, bench.warmup,
                                                           bench.duration, queue)) for ns in namespaces]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=bench.warmup + bench.duration + 120) for _ in procs)
    for p in procs:
        p.join()
    per = {ns: {"ops": len(lat), "p50": statistics.median(lat) if lat else None,
                "p95": sorted(lat)[int(len(lat) * 0.95)] if lat else None} for ns, lat in results.items()}
    return {"aggregate_per_s": sum(v["ops"] for v in per.values()) / bench.duration, "namespaces": per}


def run(bench: Bench) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.cluster_server import Cluster, namespaces_on_different_masters

    cluster = Cluster().start()
    try:
        names = namespaces_on_different_masters(cluster, 3)
        report = {}
        for count in (1, 3):
            r = _round(cluster.url, names[:count], bench)
            report[count] = r
            lat = ", ".join(f"{ns}: p50 {v['p50']:.2f} ms p95 {v['p95']:.2f} ms"
                            for ns, v in r["namespaces"].items() if v["p50"] is not None)
            print(f"{count} namespace(s): {r['aggregate_per_s']:.0f} create+claim/s in all; {lat}", flush=True)
        bench.data["cluster"] = report
        bench.notes.append(f"cluster: 1 namespace {report[1]['aggregate_per_s']:.0f}/s, "
                           f"3 namespaces {report[3]['aggregate_per_s']:.0f}/s (create+claim, in-process)")
    finally:
        cluster.stop()
