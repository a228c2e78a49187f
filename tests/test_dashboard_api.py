"""Contract 1.12: ``GET /api/dashboard/stats`` and ``GET /api/dashboard/activity``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from loop.store.dashboard import DashboardService
from tests.conftest import keys_of
from tests.wire import sent_alone


def mk(client: Any, **fields: Any) -> dict[str, Any]:
    r = client.post("/api/issues", json={"title": "An issue", "type": "task", **fields})
    assert r.status_code == 201, r.text
    return dict(r.json["data"])


def stats(client: Any) -> dict[str, Any]:
    r = client.get("/api/dashboard/stats")
    assert r.status_code == 200 and set(r.json) == {"data"}
    return dict(r.json["data"])


# ----------------------------------------------------------------------------- stats
def test_stats_of_an_empty_store_are_zeros_and_empty_maps(client, store):
    before = keys_of(store)
    assert stats(client) == {
        "issues": {"total": 0, "byStatus": {}, "byType": {}},
        "goals": {"total": 0, "active": 0, "achieved": 0},
        "dispatch": {"queueDepth": 0, "activeCount": 0, "completedLast24h": 0},
    }
    assert keys_of(store) == before


def test_stats_count_live_issues_by_status_and_type(client):
    for status, issue_type in (("todo", "task"), ("todo", "plan"), ("backlog", "task"), ("in_progress", "signal"),
                               ("triage", "task"), ("canceled", "monitor")):
        mk(client, status=status, type=issue_type)
    gone = mk(client, status="todo", type="hypothesis")
    client.delete(f"/api/issues/{gone['id']}")
    s = stats(client)
    assert s["issues"] == {
        "total": 6,
        "byStatus": {"todo": 2, "backlog": 1, "in_progress": 1, "triage": 1, "canceled": 1},
        "byType": {"task": 3, "plan": 1, "signal": 1, "monitor": 1},
    }
    assert s["dispatch"]["queueDepth"] == 3 and s["dispatch"]["activeCount"] == 1


def test_stats_count_live_goals_of_every_status(client):
    ids = [client.post("/api/goals", json={"title": "g", "status": st}).json["data"]["id"]
           for st in ("active", "active", "achieved", "abandoned", "active")]
    client.delete(f"/api/goals/{ids[0]}")
    client.patch(f"/api/goals/{ids[1]}", json={"status": "achieved"})
    assert stats(client)["goals"] == {"total": 4, "active": 1, "achieved": 2}


def test_completed_last_24h_counts_live_done_issues_by_completion_time(client, clock):
    old = mk(client, status="in_progress")
    client.patch(f"/api/issues/{old['id']}", json={"status": "done"})
    clock.advance(12 * 3600)
    recent = mk(client, status="done")
    reopened = mk(client, status="done")
    client.patch(f"/api/issues/{reopened['id']}", json={"status": "todo"})
    deleted = mk(client, status="done")
    client.delete(f"/api/issues/{deleted['id']}")
    assert stats(client)["dispatch"]["completedLast24h"] == 2
    clock.advance(12 * 3600)  # exactly 24 h after the first completion: still counted
    assert stats(client)["dispatch"]["completedLast24h"] == 2
    clock.advance(1)
    assert stats(client)["dispatch"]["completedLast24h"] == 1
    client.patch(f"/api/issues/{recent['id']}", json={"title": "still done"})
    assert stats(client)["dispatch"]["completedLast24h"] == 1
    clock.advance(12 * 3600)
    assert stats(client)["dispatch"]["completedLast24h"] == 0


# ----------------------------------------------------------------------------- activity
def test_activity_lists_root_chains_with_children_relations_and_latest_activity(client, clock):
    root = mk(client, title="root")
    clock.advance(1)
    kids = [mk(client, title=f"child {i}", parentId=root["id"]) for i in range(2)]
    other = mk(client, title="other")
    rel = client.post(f"/api/issues/{kids[0]['id']}/relations",
                      json={"type": "blocked_by", "relatedIssueId": other["id"]}).json["data"]
    r = client.get("/api/dashboard/activity")
    assert r.status_code == 200 and set(r.json) == {"data", "total"}
    chains = r.json["data"]
    assert r.json["total"] == len(chains) == 2
    chain = next(c for c in chains if c["root"]["id"] == root["id"])
    assert set(chain) == {"root", "children", "childrenTotal", "latestActivity"} and chain["childrenTotal"] == 2
    listed = {i["id"]: i for i in client.get("/api/issues").json["data"]}
    assert chain["root"] == listed[root["id"]]  # a plain Issue, no detail fields
    assert [c["issue"]["id"] for c in chain["children"]] == [k["id"] for k in kids]
    assert all(set(c) == {"issue", "relations"} for c in chain["children"])
    assert chain["children"][0]["relations"] == [rel] and chain["children"][1]["relations"] == []
    assert chain["latestActivity"] == "2026-02-20T12:00:01.000Z"
    assert all(c["root"]["parentId"] is None for c in chains)


def test_activity_orders_chains_by_latest_activity_of_root_or_children(client, clock):
    a = mk(client, title="a")
    clock.advance(1)
    b = mk(client, title="b")
    clock.advance(1)
    child = mk(client, title="a's child", parentId=a["id"])
    clock.advance(1)
    c = mk(client, title="c")
    assert [ch["root"]["id"] for ch in client.get("/api/dashboard/activity").json["data"]] == [c["id"], a["id"], b["id"]]
    clock.advance(1)
    client.patch(f"/api/issues/{child['id']}", json={"status": "todo"})
    chains = client.get("/api/dashboard/activity").json["data"]
    assert [ch["root"]["id"] for ch in chains] == [a["id"], c["id"], b["id"]]
    assert chains[0]["latestActivity"] == "2026-02-20T12:00:04.000Z"
    clock.advance(1)
    client.patch(f"/api/issues/{b['id']}", json={"priority": 1})
    r = client.get("/api/dashboard/activity?limit=1")
    assert r.json["total"] == 1 and r.json["data"][0]["root"]["id"] == b["id"]
    assert r.json["data"][0]["latestActivity"] == "2026-02-20T12:00:05.000Z"


def test_activity_leaves_out_deleted_issues_and_follows_reparenting(client, clock):
    a, b = mk(client), mk(client)
    child = mk(client, parentId=a["id"])
    gone = mk(client, parentId=a["id"])
    client.delete(f"/api/issues/{gone['id']}")
    client.delete(f"/api/issues/{b['id']}")
    chains = client.get("/api/dashboard/activity").json["data"]
    assert [ch["root"]["id"] for ch in chains] == [a["id"]]
    assert [c["issue"]["id"] for c in chains[0]["children"]] == [child["id"]]
    clock.advance(1)
    client.patch(f"/api/issues/{child['id']}", json={"parentId": None})
    assert {ch["root"]["id"] for ch in client.get("/api/dashboard/activity").json["data"]} == {a["id"], child["id"]}
    client.patch(f"/api/issues/{a['id']}", json={"parentId": child["id"]})
    chains = client.get("/api/dashboard/activity").json["data"]
    assert [ch["root"]["id"] for ch in chains] == [child["id"]]
    assert [c["issue"]["id"] for c in chains[0]["children"]] == [a["id"]]


def test_activity_defaults_to_20_chains(client, store):
    for _ in range(25):
        store.issues.create({"title": "t", "type": "task"})
    r = client.get("/api/dashboard/activity")
    assert len(r.json["data"]) == 20 and r.json["total"] == 20
    assert client.get("/api/dashboard/activity?limit=200").json["total"] == 25


@pytest.mark.parametrize(("query", "message"), [
    ("limit=0", "must be at least 1"), ("limit=201", "must be at most 200"), ("limit=x", "must be an integer"),
])
def test_a_bad_activity_limit_is_a_400(client, query, message):
    r = client.get(f"/api/dashboard/activity?{query}")
    assert r.status_code == 400 and r.json["details"] == {"limit": [message]}


def test_dashboard_routes_require_a_key(client):
    for path in ("/api/dashboard/stats", "/api/dashboard/activity"):
        assert client.get(path, auth=False).status_code == 401


def test_stats_never_load_issue_rows(client, store, monkeypatch):
    for status in ("todo", "done", "backlog"):
        mk(client, status=status)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("stats loaded rows")

    monkeypatch.setattr(store, "get_rows", forbidden)
    monkeypatch.setattr(store, "get_row", forbidden)
    s = stats(client)
    assert s["issues"]["total"] == 3 and s["dispatch"]["completedLast24h"] == 1


def _round_trips(store: Any, monkeypatch: Any) -> Callable[[], int]:
    """Counts the store's pipelines executed and its commands sent alone (each one round trip)."""
    alone = sent_alone(monkeypatch)  # direct commands and script calls
    trips: list[int] = []
    real_pipeline = store.r.pipeline

    def pipeline(*args: Any, **kw: Any) -> Any:
        pipe = real_pipeline(*args, **kw)
        execute = pipe.execute
        pipe.execute = lambda *a, **k: (trips.append(1), execute(*a, **k))[1]
        return pipe

    monkeypatch.setattr(store.r, "pipeline", pipeline)
    return lambda: len(trips) + len(alone)


def test_activity_loads_only_the_requested_chains_in_a_constant_number_of_round_trips(
        client, store, clock, monkeypatch):
    other = store.issues.create({"title": "other", "type": "task"})
    for n in range(30):
        root = store.issues.create({"title": f"root {n}", "type": "plan"})
        for _ in range(3):
            kid = store.issues.create({"title": "kid", "type": "task", "parentId": root["id"]})
            store.relations.create(kid["id"], "blocks", other["id"])
        clock.advance(1)
    r = client.get("/api/dashboard/activity?limit=5")
    assert r.json["total"] == 5 and [c["root"]["title"] for c in r.json["data"]] == [
        f"root {n}" for n in range(29, 24, -1)]
    assert all(len(c["children"]) == 3 and len(c["children"][0]["relations"]) == 1 for c in r.json["data"])
    trips = _round_trips(store, monkeypatch)
    assert len(DashboardService(store).activity(5)) == 5
    assert trips() == 4  # roots; their rows and children; children and relation ids; relations


def test_an_activity_chain_lists_the_fifty_most_recent_children_and_counts_them_all(client, store):
    root = store.issues.create({"title": "root", "type": "plan"})
    kids = [store.issues.create({"title": f"kid {n}", "type": "task", "parentId": root["id"]}) for n in range(60)]
    chain = client.get("/api/dashboard/activity").json["data"][0]
    assert [c["issue"]["id"] for c in chain["children"]] == [k["id"] for k in kids[10:]]
    assert chain["childrenTotal"] == 60
