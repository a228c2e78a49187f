"""1,000 concurrent dispatchers (8 processes x 125 threads, each with its own connection) over a
backlog with blocked edges: no issue claimed twice, none blocked, every eligible one exactly once."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from loop.clock import FrozenClock
from loop.dispatch.audit import audit, expected
from loop.dispatch.scoring import parse_member
from loop.runtime import build
from loop.settings import Settings
from loop.store import connect

PROCESSES = 8
THREADS = 125
TODO = 800
BLOCKED = 200


def _dispatcher_process(settings: Settings, url: str, start_ms: int, threads: int, tag: int) -> list[tuple[str, str]]:
    """Run ``threads`` dispatchers, each with its own Redis connection, claiming until nothing is left."""
    barrier = threading.Barrier(threads)
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            store = build(connect(url, max_connections=1), settings, FrozenClock(start_ms))
            store.r.ping()
            barrier.wait(60)
            mine = []
            while (claim := store.dispatch.claim(f"agent-{tag}-{n}")) is not None:
                mine.append((claim.issue["id"], claim.session_id))
            with lock:
                results.extend(mine)
            store.r.close()
        except BaseException as exc:  # reported to the parent below
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} dispatcher(s) failed: {errors[0]!r}")
    return results


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_thousand_concurrent_dispatchers_claim_every_eligible_issue_exactly_once(store, redis_url, clock):
    issues = [store.issues.create({"title": f"i{n}", "type": ("task", "signal", "plan")[n % 3],
                                   "priority": n % 5, "status": "todo"}) for n in range(TODO)]
    parked = [store.issues.create({"title": f"blocker{n}", "type": "task", "status": "backlog"}) for n in range(40)]
    # Blocked issues: by parked blockers and by todo blockers (claimed ones stay unresolved), both directions.
    for n in range(BLOCKED):
        blocker = parked[n % 40] if n % 2 else issues[TODO - 1 - n % 100]
        blocked = issues[n * 3 % (TODO - 100)]
        if n % 3:
            store.relations.create(blocker["id"], "blocks", blocked["id"])
        else:
            store.relations.create(blocked["id"], "blocked_by", blocker["id"])
    ready, blocked_counts = expected(store)
    eligible = {parse_member(m)[0] for m in ready}
    blocked_ids = {i for i, n in blocked_counts.items() if n > 0}
    assert len(eligible) == TODO - len(blocked_ids) and len(blocked_ids) == BLOCKED

    # fork: the children inherit the imported code (no re-import per process); each opens its own connections.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(PROCESSES) as pool:
        batches = pool.starmap(_dispatcher_process, [
            (store.settings, redis_url, clock.now_ms(), THREADS, p) for p in range(PROCESSES)])
    claims = [c for batch in batches for c in batch]
    claimed = [issue_id for issue_id, _ in claims]
    assert len(claimed) == len(set(claimed)), "an issue was claimed twice"
    assert not set(claimed) & blocked_ids, "a blocked issue was claimed"
    assert set(claimed) == eligible
    assert store.r.zcard(store.keys.dispatch_ready()) == 0
    rows = {r["id"]: r for r in store.issues.get_many(claimed)}
    assert all(rows[i]["status"] == "in_progress" and rows[i]["agentSessionId"] == s for i, s in claims)
    assert store.issues.list({"status": ["todo"]}, 1, 0)[1] == len(blocked_ids)
    assert audit(store) == []
