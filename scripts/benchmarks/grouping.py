"""Grouping: POST /api/signals that groups / opens an issue vs /health; 10,000 Sentry deliveries of one issue.

Targets (issue 14): ``POST /api/signals`` with a fingerprint that groups (joins the open issue) and
with one that opens a new issue, each >= 0.5 of ``GET /health``'s req/s in alternating rounds of
the same server (the create-issue target), and by server CPU per request. 10,000 Sentry
``error.created`` deliveries of one Sentry issue (distinct events) give one triage issue with
``signalCount`` 10,000 and 10,000 signals; Redis memory per grouped signal is reported.

The 10,000 deliveries run through the worker's job function (``workers.signals.normalize_delivery``:
the delivery guard, the Sentry normalizer and its fingerprint, the grouped write), called
in-process with the job spec the API would have queued: the HTTP accept path is measured by the
webhooks scenario, and 10,000 RQ jobs would time the queue, not the grouping.

Options: ``-o parts=http,sentry`` (default both), ``-o deliveries=10000``, ``-o base=<worktree>``:
the http part also runs a second server from that worktree (e.g. the commit before a change,
``git worktree add``) on the same Redis, its rounds alternating with this one's, so a before/after
comparison shares one run's load.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import statistics
import time
import uuid
from typing import Any

import orjson

from benchmarks.foundation import new_keys_by_group
from benchmarks.harness import ROOT, Bench, Request, Result, Server
from loop.clock import SystemClock
from loop.runtime import build
from loop.settings import Settings
from loop.signals.providers import Delivery
from loop.signals.sentry import identity
from loop.store.base import connect
from workers.signals import normalize_delivery

PARTS = ("http", "sentry")
DELIVERIES = 10_000
SENTRY = orjson.loads((ROOT / "tests" / "fixtures" / "sentry" / "error.created.json").read_bytes())
_ID = re.compile(r"\b[a-z][a-z0-9]{23}\b|\b[0-9a-f]{32}\b")


def run(bench: Bench) -> None:
    parts = str(bench.options.get("parts") or ",".join(PARTS)).split(",")
    if "http" in parts:
        http_vs_health(bench)
    if "sentry" in parts:
        sentry_burst(bench, int(bench.options.get("deliveries") or DELIVERIES))


def _merge(name: str, parts: list[Result]) -> Result:
    return Result(name, sum(p.requests for p in parts), sum(p.seconds for p in parts),
                  [x for p in parts for x in p.latencies], sum(p.errors for p in parts),
                  app_cpu=sum(p.app_cpu for p in parts), redis_cpu=sum(p.redis_cpu for p in parts))


class _Worktree(Server):
    """The server run from another worktree (``-o base=``): gunicorn imports the app from there."""

    def __init__(self, root: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = root

    def app_args(self) -> list[str]:
        return ["--chdir", self.root, "api.app:app"]


def http_vs_health(bench: Bench) -> None:
    print("\n== /health vs POST /api/signals, grouped and new (alternating rounds on one server)", flush=True)
    base = bench.options.get("base")
    with contextlib.ExitStack() as stack:
        servers = {"": stack.enter_context(bench.server())}
        if base:
            srv = _Worktree(str(base), bench.redis_url, bench.workers, None, bench.gunicorn_args)
            stack.callback(srv.stop)
            servers["base "] = srv.start()
        series = {label: _series() for label in servers}
        for r in range(1, bench.rounds + 1):
            for label, srv in servers.items():
                _round(bench, srv, label, r, series[label])
        for label, srv in servers.items():
            _report(bench, srv, label, series[label])


def _series() -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    return {"run": run_id, "health": [], "grouped": [], "new": [], "ratios": {"grouped": [], "new": []}}


def _round(bench: Bench, srv: Server, label: str, r: int, series: dict[str, Any]) -> None:
    body = {"source": "bench", "type": "error", "severity": "medium",
            "payload": {"message": "KeyError: 'user' in checkout", "count": 1}}
    run_id = series["run"]

    def grouped(i: int) -> Request:
        return Request("POST", "/api/signals", {**body, "fingerprint": f"bench:{run_id}:one"})

    def new(i: int) -> Request:
        # A fresh fingerprint per request: each opens its own issue (and group).
        return Request("POST", "/api/signals", {**body, "fingerprint": f"bench:{run_id}:{uuid.uuid4().hex}"})

    health = bench.record(bench.load(srv, f"{label}GET /health (round {r})", lambda i: Request("GET", "/health")))
    series["health"].append(health)
    for name, make in (("grouped", grouped), ("new", new)):
        res = bench.record(bench.load(srv, f"{label}POST /api/signals, {name} (round {r})", make))
        series[name].append(res)
        series["ratios"][name].append(res.rps / health.rps)


def _report(bench: Bench, srv: Server, label: str, series: dict[str, Any]) -> None:
    h = _merge("health", series["health"])
    for name in ("grouped", "new"):
        ratios = series["ratios"][name]
        med = statistics.median(ratios)
        bench.ratio(f"{label}signal {name} req/s / GET /health req/s", med, ">= 0.5", med >= 0.5,
                    "median of rounds " + ", ".join(f"{x:.2f}" for x in ratios))
        c = _merge(name, series[name])
        est = h.cpu_ms / c.cpu_ms
        bench.ratio(f"{label}signal {name} / GET /health, from server CPU per request", est, ">= 0.5", est >= 0.5,
                    f"{c.cpu_ms:.3f} ms (app {c.app_cpu * 1000 / c.requests:.3f} + redis "
                    f"{c.redis_cpu * 1000 / c.requests:.3f}) vs {h.cpu_ms:.3f} ms per request, all rounds")
    one = srv.store.r.get(srv.store.keys.signal_group(_digest(f"bench:{series['run']}:one")))
    issue = srv.store.issues.get(one) if one else None
    sent = sum(x.requests for x in series["grouped"])
    bench.note(f"{label}grouped fingerprint: one issue, signalCount {issue and issue['signalCount']} "
               f"({sent} measured requests plus the warm-ups)")


def _digest(fingerprint: str) -> str:
    from loop.store.signals import fingerprint_digest

    return fingerprint_digest(fingerprint)


def _group(key: str, prefix: str) -> str:
    return _ID.sub("<id>", key[len(prefix):])


def sentry_burst(bench: Bench, n: int) -> None:
    print(f"\n== {n:,} Sentry error.created deliveries of one Sentry issue, through the worker's job function",
          flush=True)
    client = connect(bench.redis_url)
    namespace = f"bench-group-{uuid.uuid4().hex[:8]}"
    store = build(client, Settings(namespace=namespace), SystemClock())
    try:
        specs = []
        for _ in range(n):
            payload = copy.deepcopy(SENTRY)
            payload["data"]["error"]["event_id"] = uuid.uuid4().hex
            body = orjson.dumps(payload)
            ident = identity("error", payload, body)
            delivery = Delivery("sentry", ident, ident, {"resource": "error"})
            specs.append({"v": 1, "namespace": namespace, "promote": True, "dedupTtl": 7 * 24 * 3600,
                          "provider": "sentry", "deliveryId": delivery.delivery_id, "digest": delivery.digest,
                          "meta": dict(delivery.meta), "body": body.decode(), "receivedAt": store.now()})
        # The first delivery opens the issue; memory is measured over the n - 1 that join it.
        first = normalize_delivery(specs[0], client)
        before = int(client.info("memory")["used_memory"])
        keys_before = set(client.scan_iter(match=store.keys.all_pattern(), count=1000))
        t0 = time.perf_counter()
        statuses = [normalize_delivery(spec, client) for spec in specs[1:]]
        took = time.perf_counter() - t0
        after = int(client.info("memory")["used_memory"])
        issue = store.issues.get(first["issueId"])
        assert issue is not None
        signals = int(client.zcard(store.keys.signal_index()))
        issues = int(client.bitcount(store.keys.issue_bits()))
        grouped = sum(1 for s in statuses if s.get("grouped"))
        per = (after - before) / (n - 1)
        print(f"  {n - 1:,} grouped deliveries in {took:.1f}s ({(n - 1) / took:,.0f}/s, one process); "
              f"issues {issues}, signalCount {issue['signalCount']}, signals {signals:,}, grouped {grouped:,}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        bench.ratio(f"{n:,} deliveries of one Sentry issue -> issues", issues, "== 1", issues == 1)
        bench.ratio(f"{n:,} deliveries of one Sentry issue -> signalCount", issue["signalCount"], f"== {n}",
                    issue["signalCount"] == n and signals == n)
        groups = new_keys_by_group(client, store, keys_before, _group)
        grew: dict[str, int] = {}
        for key in keys_before:  # the indexes every grouped signal adds to
            name = _group(key, store.keys.prefix + ":")
            if name.startswith(("idx:signals", "retention")):
                grew[name] = int(client.memory_usage(key, samples=0) or 0)
        print(f"  Redis memory per grouped signal: {per:,.0f} B (used_memory delta / {n - 1:,})", flush=True)
        for g, (count, size) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
            print(f"     new {g:<40} {count:>6} keys {size / (n - 1):>8.1f} B/signal", flush=True)
        for g, size in sorted(grew.items(), key=lambda kv: -kv[1]):
            print(f"     index {g:<38} {size / n:>8.1f} B/signal (whole key / {n:,})", flush=True)
        bench.data["grouping"] = {"deliveries": n, "seconds": took, "per_signal_bytes": per, "groups": groups,
                                  "indexes": grew, "signalCount": issue["signalCount"], "issues": issues}
        bench.note(f"memory per grouped signal {per:,.0f} B; {(n - 1) / took:,.0f} grouped deliveries/s")
    finally:
        store.delete_namespace()
