"""The re-open PATCH against a create, in process: the WSGI app called directly, CPU per request.

Under gunicorn the CPU per request of a PATCH and of a create swings by +-30% between rounds on a
2-core box (other processes, the HTTP floor of ~0.4 ms that both pay). Here the Falcon app built as
``api.app:app_from_env`` builds it is called directly, in this thread, on the private Redis, seeded
with ``size`` issues (``dispatch.seed``): per round, ``n`` ``POST /api/issues`` (a ~60-character
title, a 400-character description), then ``n`` ``GET /api/dispatch/next`` (claim + prompt), then
the ``n`` claimed issues re-opened by ``PATCH {"status": "todo"}`` with their claim token (the
claiming process: the fenced write is predicted, issue 12). App CPU is this thread's CPU time; Redis
CPU is the growth of ``INFO commandstats`` (the time Redis spent in commands). Medians over
``--rounds`` rounds.

Options: ``size`` (default 1000), ``n`` (default 100).
"""

from __future__ import annotations

import io
import random
import statistics
import sys
import time
from typing import Any

import orjson

from benchmarks.dispatch import seed
from benchmarks.foundation import _text
from benchmarks.harness import Bench
from loop.settings import Settings


def run(bench: Bench) -> None:
    from api.app import create_app
    from loop.prompts import seeds
    from loop.runtime import from_settings

    size, n = int(bench.options.get("size") or 1000), int(bench.options.get("n") or 100)
    key = "loop_" + "b" * 64
    settings = Settings(api_key=key, redis_url=bench.redis_url, namespace=f"bench-inproc-{random.randrange(1 << 32):08x}")
    store = from_settings(settings)  # as app_from_env: its Redis timeouts and clock
    seeds.warm()
    app = create_app(store, store.clock, settings)
    rng = random.Random(7)
    description = _text(rng, 400)
    seed(store, size, description)
    raw = store.r

    def call(method: str, path: str, body: Any = None, token: str | None = None) -> tuple[str, bytes]:
        data = orjson.dumps(body) if body is not None else b""
        env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "bench",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(data)),
               "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {key}"}
        if token:
            env["HTTP_X_LOOP_CLAIM_TOKEN"] = token
        status: list[str] = []
        out = b"".join(app(env, lambda s, h, e=None: status.append(s)))
        return status[0], out

    def redis_us() -> float:
        return float(sum(v["usec"] for v in raw.info("commandstats").values()))

    rows: list[tuple[float, ...]] = []
    try:
        for rnd in range(bench.rounds):
            c0, r0 = time.thread_time(), redis_us()
            for _ in range(n):
                status, _ = call("POST", "/api/issues", {"title": _text(rng, 60), "description": description,
                                                          "type": "task"})
                assert status.startswith("201"), status
            c1, r1 = time.thread_time(), redis_us()
            claims = []
            for _ in range(n):
                status, body = call("GET", "/api/dispatch/next")
                assert status.startswith("200"), status
                got = orjson.loads(body)
                claims.append((got["issue"]["id"], got["claim"]["token"]))
            c2, r2 = time.thread_time(), redis_us()
            for issue_id, token in claims:
                status, _ = call("PATCH", f"/api/issues/{issue_id}", {"status": "todo"}, token)
                assert status.startswith("200"), status
            c3, r3 = time.thread_time(), redis_us()
            rows.append(((c1 - c0) * 1e6 / n, (r1 - r0) / n, (c3 - c2) * 1e6 / n, (r3 - r2) / n,
                         (c2 - c1) * 1e6 / n, (r2 - r1) / n))
            print(f"  round {rnd + 1}: create {rows[-1][0]:.0f} + {rows[-1][1]:.0f} us, "
                  f"PATCH {rows[-1][2]:.0f} + {rows[-1][3]:.0f} us, /next {rows[-1][4]:.0f} + {rows[-1][5]:.0f} us "
                  "(app + Redis)", flush=True)
    finally:
        store.delete_namespace()
    create_app_us, create_redis_us, patch_app_us, patch_redis_us, next_app_us, next_redis_us = (
        statistics.median(r[i] for r in rows) for i in range(6))
    ratio = (patch_app_us + patch_redis_us) / (create_app_us + create_redis_us)
    print(f"\n| per request, median of {len(rows)} rounds of {n} | app CPU (us) | Redis (us) | total |\n|---|---|---|---|\n"
          f"| POST /api/issues | {create_app_us:.0f} | {create_redis_us:.0f} | {create_app_us + create_redis_us:.0f} |\n"
          f"| PATCH re-open (claiming process) | {patch_app_us:.0f} | {patch_redis_us:.0f} | "
          f"{patch_app_us + patch_redis_us:.0f} |\n"
          f"| GET /api/dispatch/next (claim + prompt) | {next_app_us:.0f} | {next_redis_us:.0f} | "
          f"{next_app_us + next_redis_us:.0f} |\n\nPATCH / create: {ratio:.2f} (app {patch_app_us / create_app_us:.2f})")
    bench.ratio("re-open PATCH / create, CPU in process", ratio, "<= 1.0", ratio <= 1.0,
                f"app {patch_app_us:.0f} vs {create_app_us:.0f} us, Redis {patch_redis_us:.0f} vs {create_redis_us:.0f} us")
    bench.data["inprocess"] = {"rounds": rows}
