"""Prompts: render p50/p99 of each seeded template, and dispatch claims/s with vs without rendering.

Target (issue 5): rendering adds at most 1 ms at p50 to a dispatch. Measured in-process on
the benchmark Redis (no HTTP, whose cost is the same with or without a prompt):

* per seeded template, with a realistic context (project + goal, a parent with 20 children,
  labels, relations, 3 earlier released sessions and the active claim): ``render`` = the
  pybars render alone, ``dispatch render`` = what a claim pays (``render_for_dispatch``: the two
  context calls, with the sessions; selection; render; the MULTI counting the use);
* ``store.dispatch.next`` claims alternating, round by round, between rendering on and off
  (``store.prompts`` detached), over one backlog of child tasks in a project with a goal.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Bench, Result
from loop.clock import SystemClock
from loop.runtime import build
from loop.settings import Settings
from loop.store import RedisStore, connect

TYPES = ("signal", "hypothesis", "task", "plan", "monitor")
SIBLINGS = 20
RENDERS = 300
CLAIMS_PER_ROUND = 150


def run(bench: Bench) -> None:
    settings = Settings(api_key="bench-" + secrets.token_hex(8), redis_url=bench.redis_url,
                        namespace=f"bench-prompts-{secrets.token_hex(4)}")
    store = build(connect(bench.redis_url), settings, SystemClock())
    try:
        renders(bench, store)
        dispatch_with_and_without(bench, store)
    finally:
        store.delete_namespace()


def redis_cpu(store: RedisStore) -> float:
    info = store.r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def with_cpu(result: Result, app: float, redis: float) -> Result:
    """Attach CPU seconds (this process, Redis): on a shared box they move far less than latency."""
    result.app_cpu, result.redis_cpu = app, redis
    return result


def timed(store: RedisStore, name: str, n: int, fn: Callable[[], Any]) -> Result:
    lat: list[float] = []
    cpu0, redis0 = time.process_time(), redis_cpu(store)
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    return with_cpu(Result(name, n, seconds, lat, 0), time.process_time() - cpu0, redis_cpu(store) - redis0)


def project_with_goal(store: RedisStore, name: str) -> str:
    project = store.projects.create({"name": name, "description": "Checkout must be fast & reliable."})
    store.goals.create({"title": "p95 checkout latency under 300 ms", "metric": "p95 latency", "unit": "ms",
                        "currentValue": 420.0, "targetValue": 300.0, "projectId": project["id"]})
    return str(project["id"])


def realistic_issue(store: RedisStore, issue_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A claimed issue of ``issue_type`` with a full neighbourhood; returns (row, claim)."""
    pid = project_with_goal(store, f"Checkout ({issue_type})")
    label = store.labels.ensure("backend", "#0ea5e9")
    parent = store.issues.create({"title": "Make checkout fast", "type": "plan", "status": "backlog",
                                  "projectId": pid, "description": "Cut p95 latency of checkout below 300 ms."})
    for n in range(SIBLINGS):
        store.issues.create({"title": f"Sibling task {n}: tune query {n}", "type": "task", "status": "backlog",
                             "parentId": parent["id"]})
    data: dict[str, Any] = {
        "title": f"The {issue_type} under test <with> & \"quotes\"", "type": issue_type, "status": "todo",
        "priority": 2, "projectId": pid, "parentId": parent["id"], "labelIds": [label["id"]],
        "description": "A realistic description.\n\n" + "It has several paragraphs of detail. " * 12,
    }
    if issue_type == "signal":
        data.update(signalSource="sentry", signalPayload={
            "message": "TypeError: cannot read 'total' of undefined", "count": 184, "level": "error",
            "stack": [f"at frame{n} (checkout.js:{n * 7})" for n in range(15)]})
    if issue_type == "hypothesis":
        data["hypothesis"] = {"statement": "N+1 queries in the cart cause the latency", "confidence": 0.7,
                              "evidence": ["query log shows 40 queries per request", "p95 tracks cart size"],
                              "validationCriteria": "p95 drops below 300 ms after batching",
                              "prediction": "p95 around 250 ms"}
    issue = store.issues.create(data)
    blocker = store.issues.create({"title": "Add tracing", "type": "task", "status": "done"})
    store.relations.create(issue["id"], "blocked_by", blocker["id"])
    for n in range(3):  # three earlier attempts, each given back with a reason
        claim = store.dispatch.claim("bench-agent", pid)
        assert claim is not None and claim.issue["id"] == issue["id"]
        store.dispatch.release(claim.session_id, "bench-agent", None, f"Attempt {n}: needed more context")
    claim = store.dispatch.claim("bench-agent", pid)
    assert claim is not None
    return claim.issue, {"sessionId": claim.session_id, "expiresAt": claim.expires_at}


def renders(bench: Bench, store: RedisStore) -> None:
    prompts = store.prompts
    table: dict[str, Any] = {}
    for issue_type in TYPES:
        issue, claim = realistic_issue(store, issue_type)
        facts = prompts.facts(issue, claim)
        choice = prompts.choose(facts)
        slug = choice.template["slug"]
        prompt, _ = prompts.render(facts, choice)  # warm: compiles once
        only = bench.record(timed(store, f"render {slug} ({len(prompt)} chars)", RENDERS,
                                  lambda f=facts, c=choice: prompts.render(f, c)))
        full = bench.record(timed(store, f"dispatch render {slug}", RENDERS,
                                  lambda i=issue, c=claim: prompts.render_for_dispatch(i, c)))
        table[slug] = {"chars": len(prompt), "render_p50_ms": only.pct(0.5), "render_p99_ms": only.pct(0.99),
                       "render_cpu_ms": only.cpu_ms, "dispatch_render_p50_ms": full.pct(0.5),
                       "dispatch_render_p99_ms": full.pct(0.99), "dispatch_render_cpu_ms": full.cpu_ms}
    bench.data["prompts_render"] = table


def dispatch_with_and_without(bench: Bench, store: RedisStore) -> None:
    prompts = store.prompts
    pid = project_with_goal(store, "Dispatch backlog")
    needed = (bench.rounds * 2 + 1) * CLAIMS_PER_ROUND
    parents = [store.issues.create({"title": f"Epic {n}", "type": "plan", "status": "backlog", "projectId": pid})
               for n in range(needed // SIBLINGS + 1)]
    for n in range(needed):
        store.issues.create({"title": f"Backlog task {n}", "type": "task", "status": "todo", "priority": n % 5,
                             "projectId": pid, "parentId": parents[n // SIBLINGS]["id"],
                             "description": "Do the thing described here. " * 8})

    cpu = {True: [0.0, 0.0], False: [0.0, 0.0]}

    def claims(render: bool, n: int) -> list[float]:
        store.dispatch.prompts = prompts if render else None
        lat = []
        cpu0, redis0 = time.process_time(), redis_cpu(store)
        for _ in range(n):
            t0 = time.perf_counter()
            out = store.dispatch.next("bench-agent", pid)
            lat.append(time.perf_counter() - t0)
            assert out is not None and (out["prompt"] is not None) == render
        cpu[render][0] += time.process_time() - cpu0
        cpu[render][1] += redis_cpu(store) - redis0
        return lat

    try:
        claims(True, CLAIMS_PER_ROUND // 2)
        claims(False, CLAIMS_PER_ROUND // 2)
        cpu.update({True: [0.0, 0.0], False: [0.0, 0.0]})
        with_lat: list[float] = []
        without_lat: list[float] = []
        for _ in range(bench.rounds):  # alternate, so drift on a shared machine hits both alike
            with_lat += claims(True, CLAIMS_PER_ROUND)
            without_lat += claims(False, CLAIMS_PER_ROUND)
    finally:
        store.dispatch.prompts = prompts
    on = bench.record(with_cpu(Result("dispatch.next with rendering", len(with_lat), sum(with_lat), with_lat, 0),
                               *cpu[True]))
    off = bench.record(with_cpu(Result("dispatch.next without rendering", len(without_lat), sum(without_lat),
                                       without_lat, 0), *cpu[False]))
    added = statistics.median(with_lat) * 1000 - statistics.median(without_lat) * 1000
    added_cpu = on.cpu_ms - off.cpu_ms
    bench.ratio("prompt rendering added to a dispatch at p50 (ms)", added, "<= 1 ms", added <= 1.0,
                f"claims/s {on.rps:.0f} with vs {off.rps:.0f} without ({on.rps / off.rps:.2f}x); "
                f"CPU per claim (client + Redis) +{added_cpu:.2f} ms")
    bench.data["prompts_dispatch"] = {"with_p50_ms": on.pct(0.5), "without_p50_ms": off.pct(0.5),
                                      "with_p99_ms": on.pct(0.99), "without_p99_ms": off.pct(0.99),
                                      "with_rps": on.rps, "without_rps": off.rps, "added_p50_ms": added,
                                      "with_cpu_ms": on.cpu_ms, "without_cpu_ms": off.cpu_ms}
