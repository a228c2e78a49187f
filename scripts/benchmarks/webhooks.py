"""Webhooks: accept req/s and p99 vs /health, p99 at 200 req/s, POST -> dispatchable latency, a 10,000-delivery burst.

Targets (issue 3): accepting a signed GitHub webhook (verify + dedup + enqueue) has p99 under
20 ms at 200 req/s; a burst of 10,000 webhooks is fully normalized by the RQ workers, none
lost and none duplicated. Also reported: closed-loop accept req/s against ``GET /health`` of
the same server, and the latency from the webhook POST to its triage issue being in the
dispatch queue, with one and with two ``python -m workers`` processes, and server CPU per
request / per normalized delivery (gunicorn or workers, plus Redis).

Options: ``-o parts=accept,paced,e2e,burst`` (default all), ``-o burst=10000``, ``-o rate=200``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import redis

from benchmarks.harness import ROOT, Bench, Request, Result, Server

SECRET = "bench-webhook-secret"
BODY = (ROOT / "tests" / "fixtures" / "github" / "issues.opened.json").read_bytes()
BURST = 10_000
E2E_RATE = 20.0


PARTS = ("accept", "paced", "e2e", "burst")


def run(bench: Bench) -> None:
    parts = str(bench.options.get("parts") or ",".join(PARTS)).split(",")
    queue = f"bench-signals-{secrets.token_hex(4)}"
    # The gunicorn servers and the workers read these from the environment.
    os.environ.update({"GITHUB_WEBHOOK_SECRET": SECRET, "LOOP_QUEUE": queue})
    with bench.server() as srv:
        try:
            if "accept" in parts:
                accept_vs_health(bench, srv)
            if "paced" in parts:
                paced_accept(bench, srv, rate=float(bench.options.get("rate") or 200))
            purge_queue(srv, queue)  # the accept phases queued jobs nobody should wait behind
            if "e2e" in parts:
                for n in (1, 2):
                    end_to_end(bench, srv, n)
            if "burst" in parts:
                burst(bench, srv, 2, int(bench.options.get("burst") or BURST))
        finally:
            purge_queue(srv, queue)


# ---------------------------------------------------------------------------- HTTP
def post(conn: http.client.HTTPConnection, delivery: str) -> int:
    # A distinct body per delivery: one body under several delivery ids is a replay (one signal).
    body = BODY.replace(b"{", b'{"delivery": "' + delivery.encode() + b'", ', 1)
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    conn.request("POST", "/api/signals/github", body=body, headers={
        "Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def get_health(conn: http.client.HTTPConnection, i: int) -> int:
    conn.request("GET", "/health")
    resp = conn.getresponse()
    resp.read()
    return resp.status


def drive(srv: Server, name: str, send: Callable[[http.client.HTTPConnection, int], int], duration: float,
          concurrency: int, rate: float | None = None) -> Result:
    """``send(conn, i)`` from ``concurrency`` threads for ``duration`` s: closed loop, or paced at
    ``rate`` req/s in total. Paced latency counts from the scheduled send time, so a server that
    falls behind shows it instead of slowing the generator down."""
    counter = iter(range(1 << 62))
    lock = threading.Lock()
    lat: list[float] = []
    codes: dict[int, int] = {}
    t0 = time.perf_counter() + 0.05
    stop = t0 + duration

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        mine: list[float] = []
        seen: dict[int, int] = {}
        n = 0
        while True:
            if rate:
                due = t0 + (n * concurrency + k) / rate
                n += 1
                if due >= stop:
                    break
                time.sleep(max(0.0, due - time.perf_counter()))
            else:
                due = time.perf_counter()
                if due >= stop:
                    break
            with lock:
                i = next(counter)
            try:
                status = send(conn, i)
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 599
            mine.append(time.perf_counter() - due)
            seen[status] = seen.get(status, 0) + 1
        conn.close()
        with lock:
            lat.extend(mine)
            for s, c in seen.items():
                codes[s] = codes.get(s, 0) + c

    app0, redis0 = srv.cpu()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app1, redis1 = srv.cpu()
    errors = sum(c for s, c in codes.items() if not 200 <= s < 300)
    return Result(name, len(lat), max(time.perf_counter() - t0, 1e-9), lat, errors, codes,
                  app1 - app0, redis1 - redis0)


# ---------------------------------------------------------------------------- helpers
def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of its waited-for children (the work-horses RQ forks)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def worker_pool(srv: Server, n: int) -> Iterator[list[int]]:
    """``n`` ``python -m workers`` processes on the server's namespace and queue."""
    from rq import Worker

    from workers.runner import queue_for

    env = {**os.environ, "REDIS_URL": srv.redis_url, "LOOP_API_KEY": srv.api_key, "LOOP_NAMESPACE": srv.namespace}
    procs = [subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(n)]
    queue = queue_for(dataclasses.replace(srv.settings, queue_name=os.environ["LOOP_QUEUE"]))
    try:
        deadline = time.monotonic() + 90
        while len(Worker.all(queue=queue)) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the workers did not start")
            time.sleep(0.1)
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def signal_count(srv: Server) -> int:
    return int(srv.store.r.zcard(srv.store.keys.signal_index()))


def wait_for_signals(srv: Server, expected: int, timeout: float) -> float:
    start = time.monotonic()
    while signal_count(srv) < expected:
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"only {signal_count(srv)} of {expected} signals after {timeout:.0f}s")
        time.sleep(0.02)
    return time.monotonic() - start


def delivered(srv: Server) -> list[tuple[str, int, str]]:
    """``(deliveryId, createdAt ms, issueId)`` of every signal of the server's namespace."""

    signals = srv.store.signals
    out: list[tuple[str, int, str]] = []
    offset = 0
    while True:
        rows, total = signals.list({}, 200, offset)
        out += [(r["deliveryId"], r["createdAt"], r["issueId"]) for r in rows]
        offset += len(rows)
        if offset >= total or not rows:
            return out


def dispatch_total(srv: Server) -> int:
    status, body = srv.call(Request("GET", "/api/dispatch/queue?limit=1"))
    return int(orjson.loads(body)["total"]) if status == 200 else -1


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def purge_queue(srv: Server, name: str) -> None:
    """Drop the benchmark's RQ queue, registries and jobs (the namespace goes with the server)."""
    conn = redis.Redis.from_url(srv.redis_url)
    keys = list(conn.scan_iter(match=f"rq:*:{name}*", count=1000))
    markers = list(srv.store.r.scan_iter(match=srv.store.keys.webhook_delivery("*", "*"), count=1000))
    job_ids = [j for j in (srv.store.r.mget(markers) if markers else []) if j]
    keys += [f"rq:job:{j}" for j in job_ids] + [f"rq:results:{j}" for j in job_ids]
    for start in range(0, len(keys), 500):
        conn.unlink(*keys[start:start + 500])
    conn.srem("rq:queues", f"rq:queue:{name}")
    conn.close()


# ---------------------------------------------------------------------------- scenarios
def accept_vs_health(bench: Bench, srv: Server) -> None:
    print("\n== POST /api/signals/github (a new delivery each) vs GET /health, closed loop, alternating", flush=True)
    tag = secrets.token_hex(3)
    ratios = []
    for r in range(1, bench.rounds + 1):
        health = bench.record(drive(srv, f"GET /health (round {r})", get_health, bench.duration, bench.concurrency))
        accept = bench.record(drive(srv, f"POST /api/signals/github (round {r})",
                                    lambda c, i, r=r: post(c, f"a-{tag}-{r}-{i}"), bench.duration, bench.concurrency))
        ratios.append(accept.rps / health.rps)
    med = statistics.median(ratios)
    bench.ratio("webhook accept req/s / GET /health req/s", med, "informative", True,
                "median of rounds " + ", ".join(f"{x:.2f}" for x in ratios))


def paced_accept(bench: Bench, srv: Server, rate: float) -> None:
    print(f"\n== paced at {rate:.0f} req/s (open loop; latency from the scheduled send time), alternating", flush=True)
    tag = secrets.token_hex(3)
    duration = max(bench.duration, 5.0)
    rounds = []
    for r in range(1, bench.rounds + 1):
        health = bench.record(drive(srv, f"GET /health @{rate:.0f}/s (round {r})", get_health, duration, 8, rate))
        accept = bench.record(drive(srv, f"POST /api/signals/github @{rate:.0f}/s (round {r})",
                                    lambda c, i, r=r: post(c, f"p-{tag}-{r}-{i}"), duration, 8, rate))
        rounds.append((accept.pct(0.99), health.pct(0.99), accept.errors))
    p99 = statistics.median(a for a, _, _ in rounds)
    errors = sum(e for _, _, e in rounds)
    bench.data["webhook_paced"] = [{"accept_p99_ms": a, "health_p99_ms": h, "errors": e} for a, h, e in rounds]
    bench.ratio(f"webhook accept p99 @{rate:.0f} req/s (ms)", p99, "< 20", p99 < 20 and errors == 0,
                "median of rounds " + ", ".join(f"{a:.1f}" for a, _, _ in rounds)
                + "; /health p99 at the same rate " + ", ".join(f"{h:.1f}" for _, h, _ in rounds))


def end_to_end(bench: Bench, srv: Server, n: int) -> None:
    seconds = max(bench.duration, 5.0)
    print(f"\n== webhook POST -> triage issue in the dispatch queue, {n} worker(s), {E2E_RATE:.0f} deliveries/s",
          flush=True)
    tag = secrets.token_hex(3)
    sent: dict[str, float] = {}
    before, ready_before = signal_count(srv), dispatch_total(srv)
    with worker_pool(srv, n):
        def send(conn: http.client.HTTPConnection, i: int) -> int:
            delivery = f"e{n}-{tag}-{i}"
            sent[delivery] = time.time() * 1000
            return post(conn, delivery)

        accepted = drive(srv, f"POST /api/signals/github @{E2E_RATE:.0f}/s", send, seconds, 2, E2E_RATE)
        wait_for_signals(srv, before + len(sent), timeout=300)
    # createdAt is stamped by the job right before the MULTI that writes the signal, the issue
    # (already todo) and the dispatch ready-set entry.
    lat = [created - sent[d] for d, created, _ in delivered(srv) if d in sent]
    ready = dispatch_total(srv) - ready_before
    p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
    print(f"  {len(lat)} deliveries: POST -> dispatchable p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(lat):.1f} ms; "
          f"accept p99 {accepted.pct(0.99):.2f} ms; new entries in the dispatch queue {ready}", flush=True)
    bench.data[f"webhook_e2e_{n}_workers"] = {"n": len(lat), "p50_ms": p50, "p99_ms": p99, "max_ms": max(lat),
                                               "dispatchable": ready}
    bench.ratio(f"webhook POST -> dispatchable p99, {n} worker(s) (ms)", p99, "informative",
                ready == len(lat) == len(sent), f"p50 {p50:.1f} ms; {ready}/{len(sent)} dispatchable")


def burst(bench: Bench, srv: Server, workers: int, total: int) -> None:
    print(f"\n== burst: {total:,} distinct deliveries (+10% redeliveries), then {workers} workers drain them",
          flush=True)
    tag = secrets.token_hex(3)
    before = signal_count(srv)
    ids = [f"b-{tag}-{i}" for i in range(total)]
    order = iter(ids + ids[::10])  # every 10th delivery arrives twice
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        while True:
            with lock:
                d = next(order, None)
            if d is None:
                break
            code = post(conn, d)
            with lock:
                statuses[code] = statuses.get(code, 0) + 1
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(bench.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posting = time.monotonic() - t0
    posted = sum(statuses.values())
    print(f"  posted {posted:,} in {posting:.1f}s ({posted / posting:.0f} req/s), statuses {statuses}", flush=True)
    with worker_pool(srv, workers) as pids:
        cpu0, redis0 = sum(tree_cpu(p) for p in pids), srv.cpu()[1]
        drained = wait_for_signals(srv, before + total, timeout=1800)
        cpu1, redis1 = sum(tree_cpu(p) for p in pids), srv.cpu()[1]
        time.sleep(1.0)  # a duplicate would show up now
    per_job = (cpu1 - cpu0) * 1000 / total
    per_job_redis = (redis1 - redis0) * 1000 / total
    got = [d for d, _, _ in delivered(srv) if d.startswith(f"b-{tag}-")]
    lost, dup = len(set(ids) - set(got)), len(got) - len(set(got))
    print(f"  normalized {len(got):,} in {drained:.1f}s once the workers were up ({len(got) / max(drained, 1e-9):.0f} "
          f"jobs/s); lost {lost}, duplicated {dup}; CPU per delivery: workers {per_job:.1f} ms "
          f"(fork, job, RQ bookkeeping), Redis {per_job_redis:.2f} ms", flush=True)
    bench.data["webhook_burst"] = {"deliveries": total, "posted": posted, "post_seconds": posting,
                                   "worker_cpu_ms_per_job": per_job, "redis_cpu_ms_per_job": per_job_redis,
                                   "drain_seconds": drained, "lost": lost, "duplicated": dup,
                                   "statuses": {str(k): v for k, v in statuses.items()}}
    bench.ratio(f"burst of {total:,}: lost + duplicated", float(lost + dup), "== 0",
                lost == 0 and dup == 0 and len(got) == total, f"drained in {drained:.1f}s by {workers} workers")
