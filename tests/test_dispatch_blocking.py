"""Blocking (contract 3.4 + improvement 3): both directions block; resolution unblocks atomically."""

from __future__ import annotations

import pytest

from loop.dispatch.audit import audit


def _issue(client, **fields):
    r = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _relate(client, source, rel_type, target):
    r = client.post(f"/api/issues/{source['id']}/relations", json={"type": rel_type, "relatedIssueId": target["id"]})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _ready_ids(client):
    return {i["issue"]["id"] for i in client.get("/api/dispatch/queue", params={"limit": 200}).json["data"]}


def _block(client, blocker, blocked, direction):
    if direction == "blocks":
        return _relate(client, blocker, "blocks", blocked)
    return _relate(client, blocked, "blocked_by", blocker)


@pytest.fixture(params=["blocks", "blocked_by"])
def direction(request):
    return request.param


def test_a_blocked_issue_is_neither_queued_nor_dispatched(client, store, direction):
    a = _issue(client, title="blocker", status="backlog")
    b = _issue(client, title="blocked", priority=1)
    _block(client, a, b, direction)
    assert _ready_ids(client) == set()
    assert client.get("/api/dispatch/next").status_code == 204
    assert client.get(f"/api/issues/{b['id']}").json["data"]["status"] == "todo"
    assert audit(store) == []


@pytest.mark.parametrize("resolution", ["done", "canceled", "deleted"])
def test_resolving_the_blocker_makes_the_blocked_issue_dispatchable(client, store, direction, resolution):
    a = _issue(client, title="blocker", status="in_progress")
    b = _issue(client, title="blocked")
    _block(client, a, b, direction)
    assert _ready_ids(client) == set()
    if resolution == "deleted":
        assert client.delete(f"/api/issues/{a['id']}").status_code == 204
    else:
        assert client.patch(f"/api/issues/{a['id']}", json={"status": resolution}).status_code == 200
    assert _ready_ids(client) == {b["id"]}
    assert client.get("/api/dispatch/next").json["issue"]["id"] == b["id"]
    assert audit(store) == []


def test_deleting_the_relation_unblocks(client, store, direction):
    a = _issue(client, status="todo")
    b = _issue(client)
    rel = _block(client, a, b, direction)
    assert _ready_ids(client) == {a["id"]}
    assert client.delete(f"/api/relations/{rel['id']}").status_code == 204
    assert _ready_ids(client) == {a["id"], b["id"]}
    assert audit(store) == []


def test_the_same_pair_recorded_both_ways_stays_blocked_until_both_rows_are_gone(client, store):
    a, b = _issue(client, status="backlog"), _issue(client)
    r1 = _relate(client, a, "blocks", b)
    r2 = _relate(client, b, "blocked_by", a)
    client.delete(f"/api/relations/{r1['id']}")
    assert _ready_ids(client) == set()
    client.delete(f"/api/relations/{r2['id']}")
    assert _ready_ids(client) == {b["id"]}
    assert audit(store) == []


def test_an_issue_with_two_blockers_waits_for_both(client, store):
    a1, a2 = _issue(client, status="backlog"), _issue(client, status="backlog")
    b = _issue(client)
    _relate(client, a1, "blocks", b)
    _relate(client, b, "blocked_by", a2)
    client.patch(f"/api/issues/{a1['id']}", json={"status": "done"})
    assert _ready_ids(client) == set()
    client.patch(f"/api/issues/{a2['id']}", json={"status": "canceled"})
    assert _ready_ids(client) == {b["id"]}
    assert audit(store) == []


def test_reopening_a_resolved_blocker_blocks_again(client, store, direction):
    a = _issue(client, status="backlog")
    b = _issue(client)
    _block(client, a, b, direction)
    client.patch(f"/api/issues/{a['id']}", json={"status": "done"})
    assert _ready_ids(client) == {b["id"]}
    client.patch(f"/api/issues/{a['id']}", json={"status": "todo"})
    assert _ready_ids(client) == {a["id"]}
    assert audit(store) == []


def test_a_relation_to_an_already_resolved_blocker_does_not_block(client, store, direction):
    a = _issue(client, status="done")
    b = _issue(client)
    _block(client, a, b, direction)
    assert _ready_ids(client) == {b["id"]}
    gone = _issue(client, status="backlog")
    client.delete(f"/api/issues/{gone['id']}")
    _block(client, gone, b, direction)
    assert _ready_ids(client) == {b["id"]}
    assert audit(store) == []


@pytest.mark.parametrize("rel_type", ["related", "duplicate"])
def test_related_and_duplicate_relations_never_block(client, store, rel_type):
    a = _issue(client, status="backlog")
    b = _issue(client)
    _relate(client, a, rel_type, b)
    _relate(client, b, rel_type, a)
    assert _ready_ids(client) == {b["id"]}


def test_blocking_a_claimed_issue_keeps_it_out_of_the_queue_when_it_is_released(client, store):
    b = _issue(client)
    claim = client.get("/api/dispatch/next").json["claim"]
    a = _issue(client, status="backlog")
    _relate(client, a, "blocks", b)
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release", json={"reason": "blocked"})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/issues/{b['id']}").json["data"]["status"] == "todo"
    assert _ready_ids(client) == set()
    client.patch(f"/api/issues/{a['id']}", json={"status": "done"})
    assert _ready_ids(client) == {b["id"]}
    assert audit(store) == []


def test_a_blocked_issue_that_becomes_todo_later_stays_out_until_unblocked(client, store):
    a = _issue(client, status="backlog")
    b = _issue(client, status="triage")
    _relate(client, b, "blocked_by", a)
    client.patch(f"/api/issues/{b['id']}", json={"status": "todo"})
    assert _ready_ids(client) == set()
    client.delete(f"/api/issues/{a['id']}")
    assert _ready_ids(client) == {b["id"]}
    assert audit(store) == []


def test_one_blocker_releases_many_issues_in_the_same_write(client, store):
    a = _issue(client, status="in_progress")
    blocked = [_issue(client, title=f"b{n}") for n in range(20)]
    for n, b in enumerate(blocked):
        _block(client, a, b, "blocks" if n % 2 else "blocked_by")
    assert _ready_ids(client) == set()
    client.patch(f"/api/issues/{a['id']}", json={"status": "done"})
    assert _ready_ids(client) == {b["id"] for b in blocked}
    assert audit(store) == []
