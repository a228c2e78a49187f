"""Lists are served from secondary indexes: a page costs about one HGETALL per returned issue,
whatever the number of stored issues; concurrent status changes keep every index consistent."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest

from api.app import create_app
from loop.clock import FrozenClock
from loop.errors import BusinessRuleError, NotFound
from loop.models import ISSUE_FIELDS, ISSUE_STATUSES
from loop.runtime import build
from loop.settings import Settings
from loop.store import RedisStore, connect
from loop.store.base import IssueHook
from tests.conftest import API_KEY, AUTH
from tests.redis_server import RedisProcess, spawn_redis

SEEDED = 20_000
STATUS_MIX = ["done"] * 10 + ["backlog"] * 6 + ["todo"] * 3 + ["in_progress"]


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisProcess]:
    proc = spawn_redis()
    try:
        yield proc
    finally:
        proc.stop()


class IndexBatch:
    """Stands in for a pipeline while ``IssueIndexes.reindex`` stages index writes, merging them so
    that 20,000 issues cost one ZADD per index key instead of one per issue and index (bitmap
    and id writes are single commands anyway: replayed as they came)."""

    def __init__(self) -> None:
        self.zsets: dict[str, dict[str, float]] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.bits: list[tuple[str, int, int]] = []
        self.ranges: list[tuple[str, int, str]] = []

    def setbit(self, key: str, offset: int, value: int) -> None:
        self.bits.append((key, offset, value))

    def setrange(self, key: str, offset: int, value: str) -> None:
        self.ranges.append((key, offset, value))

    def zadd(self, key: str, mapping: dict[str, float], **_: Any) -> None:
        self.zsets.setdefault(key, {}).update(mapping)

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.counters[(key, field)] = self.counters.get((key, field), 0) + amount

    def flush(self, pipe: Any) -> None:
        for key, members in self.zsets.items():
            items = list(members.items())
            for i in range(0, len(items), 5000):
                pipe.zadd(key, dict(items[i:i + 5000]))
        for (key, field), amount in self.counters.items():
            pipe.hincrby(key, field, amount)
        for key, offset, value in self.bits:
            pipe.setbit(key, offset, value)
        for key, offset, text in self.ranges:
            pipe.setrange(key, offset, text)


@pytest.fixture(scope="module")
def big_store(private_redis: RedisProcess) -> RedisStore:
    """20,000 issues written through the store's own row codec and index staging, pipelined."""
    settings = Settings(api_key=API_KEY, namespace="big")
    store = build(connect(private_redis.url), settings, FrozenClock())
    rng = random.Random(7)
    now = store.now()
    pipe = store.r.pipeline(transaction=False)
    batch = IndexBatch()
    for n in range(1, SEEDED + 1):
        row: dict[str, Any] = dict.fromkeys(ISSUE_FIELDS)
        row.update(id=f"s{n:023d}", number=n, title=f"issue {n}", type=rng.choice(["task", "plan", "signal"]),
                   status=STATUS_MIX[n % len(STATUS_MIX)], priority=n % 5, createdAt=now + n, updatedAt=now + n,
                   projectId=f"p{n % 10}")
        store.write_row(pipe, "issue", ISSUE_FIELDS, row["id"], row)
        store.issues.indexes.reindex(batch, None, row)
    batch.flush(pipe)
    pipe.set(store.keys.issue_seq(), SEEDED)
    pipe.execute()
    return store


def hgetalls(store: RedisStore) -> int:
    """Issue hash reads: HGETALL, or HMGET (the page's rows are read by rows_read.lua)."""
    stats = store.r.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("hgetall", "hmget"))


def measured(store: RedisStore, client: Any, path: str) -> tuple[Any, int]:
    store.r.config_resetstat()
    r = client.simulate_get(path, headers=AUTH)
    assert r.status_code == 200, r.text
    return r, hgetalls(store)


@pytest.mark.slow
@pytest.mark.parametrize(("query", "expected_total"), [
    ("status=todo", SEEDED * 3 // 20),
    ("status=todo&offset=2500", SEEDED * 3 // 20),
    ("status=todo,in_progress&type=task", None),
    ("status=backlog&projectId=p3&priority=3", None),
    ("", SEEDED),
])
def test_a_filtered_page_of_50_touches_about_50_issue_hashes(big_store, query, expected_total):
    client = falcon.testing.TestClient(create_app(big_store))
    r, calls = measured(big_store, client, f"/api/issues?limit=50&{query}")
    page = r.json["data"]
    assert len(page) == min(50, max(0, r.json["total"] - (2500 if "offset" in query else 0)))
    assert len(page) <= calls <= 55, calls  # counted for real, and no more than ~one per row
    if expected_total is not None:
        assert r.json["total"] == expected_total
    numbers = [i["number"] for i in page]
    assert numbers == sorted(numbers)
    for key, value in (p.split("=") for p in query.split("&") if p and not p.startswith("offset")):
        allowed = value.split(",")
        assert all(str(i[key]) in allowed for i in page), key


@pytest.mark.slow
def test_combined_filter_totals_are_exact(big_store):
    client = falcon.testing.TestClient(create_app(big_store))
    expected = sum(1 for n in range(1, SEEDED + 1)
                   if STATUS_MIX[n % len(STATUS_MIX)] == "backlog" and n % 10 == 3 and n % 5 == 3)
    r = client.simulate_get("/api/issues?status=backlog&projectId=p3&priority=3&limit=1", headers=AUTH)
    assert r.json["total"] == expected > 0


# ----------------------------------------------------------------------------- concurrency
@pytest.mark.slow
def test_concurrent_status_patches_leave_each_issue_in_exactly_one_status_index(app, store):
    issues = [store.issues.create({"title": f"t{i}", "type": "task", "status": "todo", "projectId": "p"})
              for i in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        client = falcon.testing.TestClient(app)
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(25):
                issue = rng.choice(issues)
                r = client.simulate_patch(f"/api/issues/{issue['id']}", headers=AUTH,
                                          json={"status": rng.choice(ISSUE_STATUSES)})
                assert r.status_code == 200, r.text
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    counts: dict[str, int] = {}
    for issue in issues:
        row = store.issues.get(issue["id"])
        assert row is not None
        member_of = [s for s in ISSUE_STATUSES
                     if store.r.getbit(store.keys.issue_bits("status", s), row["number"])]
        assert member_of == [row["status"]], (issue["id"], member_of, row["status"])
        assert (row["completedAt"] is not None) == (row["status"] == "done")
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    for status in ISSUE_STATUSES:
        assert store.r.bitcount(store.keys.issue_bits("status", status)) == counts.get(status, 0)
    assert store.issues.counts_by_project("p") == counts


# ----------------------------------------------------------------------------- hierarchy under concurrency
class Interleave(IssueHook):
    """Runs ``action`` once, from inside a write transaction (after its reads, before EXEC):
    a deterministic stand-in for another client's write landing at the worst moment."""

    def __init__(self, when: Any, action: Any) -> None:
        self.when, self.action, self.fired = when, action, False

    def prepare(self, pipe: Any, old: Any, new: Any, intent: Any) -> None:
        if not self.fired and self.when(old, new):
            self.fired = True
            self.action()


def test_a_parent_gaining_a_parent_while_a_child_is_created_still_blocks_the_grandchild(store):
    p = store.issues.create({"title": "p", "type": "task"})
    q = store.issues.create({"title": "q", "type": "task"})
    hook = Interleave(lambda old, new: old is None and new["parentId"] == p["id"],
                      lambda: store.issues.update(p["id"], {"parentId": q["id"]}))
    store.issue_hooks.append(hook)
    with pytest.raises(BusinessRuleError, match="already has a parent"):
        store.issues.create({"title": "c", "type": "task", "parentId": p["id"]})
    assert hook.fired and store.r.zcard(store.keys.issue_index("parent", p["id"])) == 0


def test_an_issue_gaining_a_child_while_it_is_given_a_parent_is_refused(store):
    x = store.issues.create({"title": "x", "type": "task"})
    p = store.issues.create({"title": "p", "type": "task"})
    hook = Interleave(lambda old, new: old is not None and new["id"] == x["id"],
                      lambda: store.issues.create({"title": "c", "type": "task", "parentId": x["id"]}))
    store.issue_hooks.append(hook)
    with pytest.raises(BusinessRuleError, match="has children"):
        store.issues.update(x["id"], {"parentId": p["id"]})
    assert hook.fired and store.issues.get(x["id"])["parentId"] is None


def test_a_parent_deleted_while_a_child_is_created_is_not_found(store):
    p = store.issues.create({"title": "p", "type": "task"})
    hook = Interleave(lambda old, new: old is None and new["parentId"] == p["id"],
                      lambda: store.issues.delete(p["id"]))
    store.issue_hooks.append(hook)
    with pytest.raises(BusinessRuleError, match="Parent issue not found"):
        store.issues.create({"title": "c", "type": "task", "parentId": p["id"]})
    assert hook.fired and store.issues.list({}, 50, 0)[1] == 0


def test_a_label_attached_while_the_issue_is_deleted_leaves_no_stale_index_entry(store):
    issue = store.issues.create({"title": "i", "type": "task"})
    label = store.labels.create({"name": "bug", "color": "red"})
    hook = Interleave(lambda old, new: False, lambda: None)
    store.issue_hooks.append(hook)
    real_check = store.issues._check_labels

    def delete_meanwhile(ids: Any) -> None:
        real_check(ids)
        if not hook.fired:
            hook.fired = True
            store.issues.delete(issue["id"])

    store.issues._check_labels = delete_meanwhile  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        store.issues.attach_label(issue["id"], label["id"])
    assert store.issues.list({"labelId": label["id"]}, 50, 0) == ([], 0)
