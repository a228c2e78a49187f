"""What gunicorn costs per request, next to Loop's ``GET /health``: why the reference is faster there.

Issue 12's table has the reference (Node, Hono) at ~10,600 ``GET /health``/s and Loop at ~3,750-4,000.
Two servers with ``bench.py``'s configuration (the Procfile's: 3 gthread workers x 4 threads,
``--reuse-port``), measured in ``--rounds`` alternating rounds, ``GET /health`` at C = ``c`` keep-alive
clients for ``--duration`` seconds:

* ``bare``: a WSGI app that answers at once (``benchmarks._bare_app``: the same status, headers
  and body size, no framework, no Redis): gunicorn's own floor;
* ``loop``: Loop's app. Its ``/health`` also writes a probe key to Redis (``loop.health.probe``:
  a write fails exactly when a request's write would), which the reference's does not.

Reported: req/s, p99, and server CPU per request (gunicorn, and Redis for ``loop``); the share of
Loop's CPU per request that gunicorn's floor already is.

Options: ``c`` (default 8).
"""

from __future__ import annotations

import statistics

from benchmarks.harness import ROOT, Bench, Request, Result, Server


class BareServer(Server):
    """gunicorn serving :mod:`benchmarks._bare_app` with the same flags as the stock server."""

    def app_args(self) -> list[str]:
        return ["benchmarks._bare_app:app", "--pythonpath", str(ROOT / "scripts")]


def run(bench: Bench) -> None:
    c = int(bench.options.get("c") or 8)
    rows: dict[str, list[Result]] = {"bare": [], "loop": []}
    for rnd in range(bench.rounds):
        for name in rows:
            srv = (BareServer if name == "bare" else Server)(bench.redis_url, bench.workers,
                                                             gunicorn_args=bench.gunicorn_args)
            try:
                srv.start()
                result = bench.load(srv, f"GET /health {name} C={c}", lambda _i: Request("GET", "/health"),
                                    concurrency=c)
            finally:
                srv.stop()
            rows[name].append(bench.record(result))
        print(f"  round {rnd + 1} done", flush=True)
    med = {name: (statistics.median(r.rps for r in rs), statistics.median(r.cpu_ms for r in rs))
           for name, rs in rows.items()}
    print(f"\n| GET /health, C={c}, median of {bench.rounds} rounds | req/s | server CPU per request (ms) |\n"
          f"|---|---|---|\n"
          f"| bare WSGI app (gunicorn's floor) | {med['bare'][0]:,.0f} | {med['bare'][1]:.3f} |\n"
          f"| Loop | {med['loop'][0]:,.0f} | {med['loop'][1]:.3f} |", flush=True)
    share = med["bare"][1] / med["loop"][1]
    bench.note(f"gunicorn's floor is {share:.0%} of Loop's CPU per /health; the floor alone allows "
               f"{med['bare'][0]:,.0f} req/s here")
    bench.data["httpfloor"] = {"c": c, "bare": [r.row() for r in rows["bare"]], "loop": [r.row() for r in rows["loop"]]}
