"""Issue 12's claim targets at 1k: /next, the claim/re-open cycle, the re-open PATCH's CPU against a create.

Servers of one or more source trees side by side on one private Redis, each seeded with 1,000
issues (``dispatch.seed``, 10% blocked, a 400-character description; topped up while claims drain
it), measured in alternating rounds so the box's load hits every tree alike:

* ``GET /api/dispatch/next`` (claim + prompt), closed loop at C = ``c`` (default 8);
* the claim/re-open cycle (``table.cycle``: ``/next``, then ``PATCH {"status":"todo"}`` with the
  claim token), claims/s and gunicorn + Redis CPU per cycle; round 1's is each server's first run;
* the re-open PATCH alone: ``patches`` issues claimed first (not measured), then re-opened by C
  threads; app and Redis CPU per PATCH, next to ``POST /api/issues``'s in the same round. Twice:
  each thread re-opening what it claimed on its own keep-alive connection (as an agent does: the
  server process that claimed serves the re-open, which then needs no read), and the claims made
  on one connection and re-opened on others (any process);
* then one ``long`` (default 60) second cycle per server, per 10-s segment: claims/s and CPU per
  cycle (flat means the last segment within 10% of the first).

Options: ``trees`` (comma list of ``name=path[:sync|:N]``, default ``new=<this tree>``; ``:sync`` serves
that tree with 2 sync workers, as issue 12 measured its base; ``:N`` with N gthread workers; else
gthread with ``bench.py``'s worker count),
``c``, ``patches`` (default 1500), ``long`` (seconds, 0 to skip).
"""

from __future__ import annotations

import http.client
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any

import orjson

from benchmarks.dispatch import seed, topped_up
from benchmarks.foundation import _text
from benchmarks.harness import ROOT, Bench, Request, Server, _drive
from benchmarks.table import _patch, cycle

SIZE = 1000


class TreeServer(Server):
    """The stock server, run from another source tree (e.g. a worktree of the base commit)."""

    def __init__(self, root: str, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.root = root

    def start(self) -> TreeServer:
        env = {**os.environ, "REDIS_URL": self.redis_url, "LOOP_API_KEY": self.api_key,
               "LOOP_NAMESPACE": self.namespace, "PORT": str(self.port), "PYTHONPATH": self.root}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "api.app:app", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--log-level", "warning", "--no-control-socket", *self.gunicorn_args],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.call(Request("GET", "/health"))[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn of {self.root} did not answer /health; see {self.log.name}")


def _load() -> str:
    return open("/proc/loadavg").read().split()[0]


def _cpu_per(srv: Server, before: tuple[float, float], n: float) -> tuple[float, float]:
    app, red = srv.cpu()
    return (app - before[0]) * 1000 / max(n, 1), (red - before[1]) * 1000 / max(n, 1)


def _steady(srv: Server, make: Any, c: int, seconds: float) -> dict[str, float]:
    _drive(srv, make, 0.5, c)
    before = srv.cpu()
    lat, _, took = _drive(srv, make, seconds, c)
    app, red = _cpu_per(srv, before, len(lat))
    lat.sort()
    return {"rps": len(lat) / took, "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1000, "app_ms": app, "redis_ms": red}


def _cycle(srv: Server, seconds: float, c: int, segments: int) -> dict[str, Any]:
    """table.cycle, with gunicorn + Redis CPU per cycle in each segment."""
    width = seconds / segments
    marks: list[tuple[float, float]] = []

    def sample() -> None:
        for i in range(segments + 1):
            time.sleep(max(0.0, start + i * width - time.perf_counter()))
            marks.append(srv.cpu())

    start = time.perf_counter()
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    rates, p99 = cycle(srv, seconds, c, segments)
    t.join()
    cpu = [((marks[i + 1][0] - marks[i][0]) + (marks[i + 1][1] - marks[i][1])) * 1000 / max(1, r * width)
           for i, r in enumerate(rates)]
    return {"rates": rates, "p99_ms": p99, "cpu_ms": cpu}


def _patches(srv: Server, n: int, c: int, own: bool) -> dict[str, float]:
    """``n`` claims (not measured), then their re-open PATCHes from ``c`` threads; app and Redis CPU
    per PATCH. ``own``: each thread claims its share on its keep-alive connection and re-opens
    those on it (an agent's pattern: the same server process serves both); else one connection
    claims them all and the threads re-open them on theirs (any process)."""
    conns = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30) for _ in range(c)]
    shares: list[list[tuple[str, str]]] = [[] for _ in range(c)]
    for i in range(n):
        status, body = srv.call(Request("GET", "/api/dispatch/next"), conns[i % c if own else 0])
        if status == 200:
            b = orjson.loads(body)
            shares[i % c].append((b["issue"]["id"], b["claim"]["token"]))
    if not own:
        for conn in conns:
            conn.close()
    ok = [0] * c

    def worker(t: int) -> None:
        conn = conns[t] if own else http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        for issue_id, token in shares[t]:
            if _patch(srv, conn, issue_id, {"X-Loop-Claim-Token": token}) == 200:
                ok[t] += 1
        conn.close()

    before, t0 = srv.cpu(), time.perf_counter()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    app, red = _cpu_per(srv, before, sum(ok))
    return {"rps": sum(ok) / took, "app_ms": app, "redis_ms": red, "n": sum(ok)}


def run(bench: Bench) -> None:
    trees = [t.split("=", 1) for t in str(bench.options.get("trees") or f"new={ROOT}").split(",")]
    c = int(bench.options.get("c") or 8)
    patches = int(bench.options.get("patches") or 1500)
    long = float(bench.options.get("long") if bench.options.get("long") is not None else 60)
    rng = random.Random(12)
    description = _text(rng, 400)
    servers: dict[str, tuple[Server, str]] = {}
    try:
        for name, spec in trees:
            root, _, mode = spec.partition(":")
            gargs = ["--worker-class", "sync"] if mode == "sync" else bench.gunicorn_args
            workers = 2 if mode == "sync" else int(mode) if mode.isdigit() else bench.workers
            srv = TreeServer(root, bench.redis_url, workers, gunicorn_args=gargs).start()
            seed(srv.store, SIZE, description)
            servers[name] = (srv, srv.store.projects.create({"name": "bench"})["id"])
        bodies = [{"title": _text(rng, 60), "description": description, "type": "task", "status": "backlog",
                   "priority": rng.randint(0, 4)} for _ in range(500)]
        ready = SIZE * 9 // 10
        for r in range(1, bench.rounds + 1):
            for name, (srv, project) in servers.items():
                row: dict[str, Any] = {"load": _load()}
                with topped_up(srv.store, ready):
                    row["cycle"] = _cycle(srv, 3 * bench.duration, c, 3)
                    row["next"] = _steady(srv, lambda i: Request("GET", "/api/dispatch/next"), c, bench.duration)
                    row["patch"] = _patches(srv, patches, c, own=True)
                    row["patch_any"] = _patches(srv, patches, c, own=False)
                row["create"] = _steady(srv, lambda i, p=project: Request(
                    "POST", "/api/issues", {**bodies[i % len(bodies)], "projectId": p}), c, bench.duration)
                row["load_end"] = _load()
                bench.data.setdefault("claims", {}).setdefault(name, []).append(row)
                cy, nx, pa, pn, cr = row["cycle"], row["next"], row["patch"], row["patch_any"], row["create"]
                print(f"  round {r} {name:<6} load {row['load']}-{row['load_end']}  cycle claims/s "
                      + " ".join(f"{x:,.0f}" for x in cy["rates"]) + f" ({sum(cy['cpu_ms']) / 3:.2f} ms CPU/cycle)"
                      f"  /next {nx['rps']:,.0f}/s p99 {nx['p99_ms']:.0f} ms ({nx['app_ms']:.2f}+{nx['redis_ms']:.2f})"
                      f"  PATCH app {pa['app_ms']:.2f} redis {pa['redis_ms']:.2f} ms"
                      f" (any process {pn['app_ms']:.2f}+{pn['redis_ms']:.2f})"
                      f"  create app {cr['app_ms']:.2f} redis {cr['redis_ms']:.2f} ms", flush=True)
        if long:
            segments = max(1, int(long // 10))
            for name, (srv, _) in servers.items():
                load0 = _load()
                with topped_up(srv.store, ready):
                    res = _cycle(srv, long, c, segments)
                bench.data.setdefault("claims_long", {})[name] = {**res, "load": [load0, _load()]}
                print(f"  {long:.0f}-s cycle {name:<6} load {load0}-{_load()}  claims/s per {long / segments:.0f} s "
                      + " ".join(f"{x:,.0f}" for x in res["rates"]) + "  CPU ms/cycle "
                      + " ".join(f"{x:.2f}" for x in res["cpu_ms"]) + f"  p99 {res['p99_ms']:.0f} ms", flush=True)
    finally:
        for srv, _ in servers.values():
            srv.stop()
