"""Scheduled issues (issue 13): notBefore keeps an issue out of dispatch until its time, with the
due times in P:dispatch:scheduled moved into the ready sets by claims and the worker's tick."""

from __future__ import annotations

import pytest

from loop.clock import iso
from loop.dispatch.audit import audit
from tests.conftest import keys_of
from workers.leases import promote_scheduled

HOUR = 3600


@pytest.fixture
def render_prompts() -> bool:
    return False


def _issue(client, **fields):
    r = client.post("/api/issues", json={"title": "t", "type": "monitor", "status": "todo", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _in(store, hours, clock):
    return iso(clock.now_ms() + int(hours * HOUR * 1000))


def test_a_scheduled_issue_is_not_dispatched_before_its_time_and_is_claimable_once_due(client, store, clock):
    issue = _issue(client, notBefore=_in(store, 48, clock))
    assert issue["notBefore"] == _in(store, 48, clock)
    assert client.get("/api/dispatch/next").status_code == 204
    assert client.get("/api/dispatch/queue").json["total"] == 0
    clock.advance(48 * HOUR - 1)
    assert client.get("/api/dispatch/next").status_code == 204
    clock.advance(1)
    r = client.get("/api/dispatch/next")
    assert r.status_code == 200 and r.json["issue"]["id"] == issue["id"]
    assert audit(store) == []


def test_scheduled_lists_issues_in_due_order_with_their_not_before_and_the_queue_leaves_them_out(client, store, clock):
    late = _issue(client, notBefore=_in(store, 5, clock))
    soon = _issue(client, notBefore=_in(store, 1, clock))
    ready = _issue(client)
    r = client.get("/api/dispatch/scheduled?limit=1")
    assert r.json["total"] == 2 and [i["id"] for i in r.json["data"]] == [soon["id"]]
    assert r.json["data"][0]["notBefore"] == soon["notBefore"]
    assert [i["id"] for i in client.get("/api/dispatch/scheduled?offset=1").json["data"]] == [late["id"]]
    assert [i["issue"]["id"] for i in client.get("/api/dispatch/queue").json["data"]] == [ready["id"]]


@pytest.mark.parametrize("when", [None, "past"])
def test_patching_not_before_to_null_or_the_past_makes_the_issue_eligible_at_once(client, store, clock, when):
    issue = _issue(client, notBefore=_in(store, 48, clock))
    value = None if when is None else _in(store, -1, clock)
    assert client.patch(f"/api/issues/{issue['id']}", json={"notBefore": value}).status_code == 200
    assert client.get("/api/dispatch/scheduled").json["total"] == 0
    assert client.get("/api/dispatch/next").json["issue"]["id"] == issue["id"]
    assert audit(store) == []


def test_patching_a_claimed_issue_back_to_todo_with_a_future_not_before_releases_it_without_a_strike(
        client, store, clock):
    issue = _issue(client)
    claim = client.get("/api/dispatch/next").json["claim"]
    r = client.patch(f"/api/issues/{issue['id']}", json={"status": "todo", "notBefore": _in(store, 2, clock)},
                     headers={"X-Loop-Claim-Token": claim["token"]})
    assert r.status_code == 200, r.text
    session = client.get(f"/api/dispatch/claims/{claim['sessionId']}").json["data"]
    assert session["status"] == "released"
    assert store.r.hget(store.keys.dispatch_state(issue["id"]), "strikes") is None
    assert client.get("/api/dispatch/next").status_code == 204
    clock.advance(2 * HOUR)
    assert client.get("/api/dispatch/next").json["issue"]["id"] == issue["id"]


def test_a_due_issue_that_is_still_blocked_waits_for_its_blocker_and_then_enters(client, store, clock):
    blocker = _issue(client, type="task")
    issue = _issue(client, notBefore=_in(store, 1, clock))
    r = client.post(f"/api/issues/{blocker['id']}/relations", json={"type": "blocks", "relatedIssueId": issue["id"]})
    assert r.status_code == 201, r.text
    clock.advance(HOUR)
    assert promote_scheduled(store) == 0  # due, but blocked: it leaves the scheduled set only
    queue = [i["issue"]["id"] for i in client.get("/api/dispatch/queue").json["data"]]
    assert queue == [blocker["id"]]
    assert client.patch(f"/api/issues/{blocker['id']}", json={"status": "done"}).status_code == 200
    assert [i["issue"]["id"] for i in client.get("/api/dispatch/queue").json["data"]] == [issue["id"]]
    assert audit(store) == []


def test_unblocking_an_issue_still_scheduled_in_the_future_does_not_dispatch_it_early(client, store, clock):
    blocker = _issue(client, type="task", status="backlog")
    issue = _issue(client, notBefore=_in(store, 1, clock))
    client.post(f"/api/issues/{blocker['id']}/relations", json={"type": "blocks", "relatedIssueId": issue["id"]})
    assert client.patch(f"/api/issues/{blocker['id']}", json={"status": "done"}).status_code == 200
    assert client.get("/api/dispatch/next").status_code == 204
    clock.advance(HOUR)
    assert client.get("/api/dispatch/next").json["issue"]["id"] == issue["id"]


def test_the_worker_tick_moves_every_due_issue_in_batches_and_leaves_future_ones(store, clock):
    for _ in range(250):
        store.issues.create({"title": "m", "type": "monitor", "status": "todo", "notBefore": clock.now_ms() + 1000})
    later = store.issues.create({"title": "m", "type": "monitor", "status": "todo",
                                 "notBefore": clock.now_ms() + 10_000})
    clock.advance(1)
    assert promote_scheduled(store) == 250
    assert store.r.zcard(store.keys.dispatch_ready()) == 250
    assert store.r.zrange(store.keys.dispatch_scheduled(), 0, -1) == [f"{later['id']}|"]
    assert audit(store) == []


def test_admin_repair_rebuilds_a_lost_scheduled_set(store, clock):
    from loop.store import reindex

    issue = store.issues.create({"title": "m", "type": "monitor", "status": "todo",
                                 "notBefore": clock.now_ms() + 60_000})
    store.r.delete(store.keys.dispatch_scheduled())
    assert any("scheduled" in p for p in audit(store))
    reindex.repair(store)
    assert store.r.zscore(store.keys.dispatch_scheduled(), f"{issue['id']}|") == clock.now_ms() + 60_000
    assert audit(store) == []


@pytest.mark.parametrize("body, field", [
    ({"title": "t", "type": "monitor", "notBefore": "tomorrow"}, "notBefore"),
    ({"title": "t", "type": "monitor", "notBefore": 12}, "notBefore"),
    ({"title": "t", "type": "monitor", "notBefore": "0025-11-03T02:09:43.300Z"}, "notBefore"),
    ({"title": "t", "type": "monitor", "notBefore": "1969-12-31T23:59:59Z"}, "notBefore"),
    ({"title": "t", "type": "task", "outcome": "validated"}, "outcome"),
    ({"title": "t", "type": "monitor", "outcome": "maybe"}, "outcome"),
])
def test_bad_not_before_or_outcome_on_create_is_a_400_naming_the_field_and_writes_nothing(client, store, body, field):
    before = keys_of(store)
    r = client.post("/api/issues", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json["details"]
    assert keys_of(store) == before


@pytest.mark.parametrize("body, field", [
    ({"notBefore": "2026-13-45"}, "notBefore"),
    ({"outcome": "validated"}, "outcome"),
    ({"outcome": "nope"}, "outcome"),
])
def test_bad_not_before_or_outcome_on_a_task_patch_is_a_400_naming_the_field_and_writes_nothing(
        client, store, body, field):
    task = _issue(client, type="task")
    before = keys_of(store)
    snapshot = store.r.hgetall(store.keys.issue(task["id"]))
    r = client.patch(f"/api/issues/{task['id']}", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json["details"]
    assert keys_of(store) == before and store.r.hgetall(store.keys.issue(task["id"])) == snapshot
