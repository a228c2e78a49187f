"""``POST /api/signals`` (synchronous ingestion), ``GET /api/signals`` and ``GET /api/signals/:id``."""

from __future__ import annotations

import contextlib
import dataclasses
from unittest import mock

import pytest
import redis

from api.app import create_app
from loop.runtime import build
from loop.scripts import Script
from loop.store.issues import Issues
from tests.conftest import Client, keys_of

SIGNAL = {"source": "posthog", "type": "metric_spike", "severity": "critical",
          "payload": {"message": "Checkout errors up 300%", "value": 300}}


def post(client, **overrides):
    return client.post("/api/signals", json={**SIGNAL, **overrides})


def test_a_signal_and_its_triage_issue_are_created_together(client, store):
    r = post(client, sourceId="alert-7", projectId="proj-1")
    assert r.status_code == 201, r.text
    signal, issue = r.json["data"]["signal"], r.json["data"]["issue"]
    assert signal["issueId"] == issue["id"]
    assert {k: signal[k] for k in ("source", "sourceId", "type", "severity", "payload", "projectId")} == {
        "source": "posthog", "sourceId": "alert-7", "type": "metric_spike", "severity": "critical",
        "payload": SIGNAL["payload"], "projectId": "proj-1"}
    assert signal["createdAt"].endswith("Z") and len(signal["id"]) == 24
    assert issue["title"] == "[posthog] metric_spike: Checkout errors up 300%"
    assert (issue["type"], issue["priority"], issue["projectId"]) == ("signal", 1, "proj-1")
    assert (issue["signalSource"], issue["signalPayload"]) == ("posthog", SIGNAL["payload"])
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["title"] == issue["title"]


def test_the_triage_issue_is_promoted_to_todo_so_dispatch_can_hand_it_out(client):
    issue = post(client).json["data"]["issue"]
    assert issue["status"] == "todo"
    listed = client.get("/api/issues?status=todo").json
    assert [i["id"] for i in listed["data"]] == [issue["id"]]
    queue = client.get("/api/dispatch/queue").json
    assert [item["issue"]["id"] for item in queue["data"]] == [issue["id"]]


def test_promotion_can_be_turned_off_and_the_issue_stays_in_triage(store, settings, clock):
    off = dataclasses.replace(settings, promote_signals_to_todo=False)
    client = Client(create_app(build(store.r, off, clock), clock, off))
    assert post(client).json["data"]["issue"]["status"] == "triage"
    assert client.get("/api/dispatch/queue").json["total"] == 0


@pytest.mark.parametrize("severity, priority", [("critical", 1), ("high", 2), ("medium", 3), ("low", 4)])
def test_severity_maps_to_priority(client, severity, priority):
    assert post(client, severity=severity).json["data"]["issue"]["priority"] == priority


def test_the_title_falls_back_to_payload_title_then_type(client):
    assert post(client, payload={"title": "Spike"}).json["data"]["issue"]["title"] == "[posthog] metric_spike: Spike"
    assert post(client, payload={"x": 1}).json["data"]["issue"]["title"] == "[posthog] metric_spike: metric_spike"


def test_no_deduplication_on_the_generic_endpoint(client):
    a = post(client, sourceId="same").json["data"]
    b = post(client, sourceId="same").json["data"]
    assert a["signal"]["id"] != b["signal"]["id"] and a["issue"]["id"] != b["issue"]["id"]


@pytest.mark.parametrize("body, field", [
    ({k: v for k, v in SIGNAL.items() if k != "source"}, "source"),
    ({**SIGNAL, "source": ""}, "source"),
    ({k: v for k, v in SIGNAL.items() if k != "type"}, "type"),
    ({k: v for k, v in SIGNAL.items() if k != "payload"}, "payload"),
    ({**SIGNAL, "payload": [1]}, "payload"),
    ({**SIGNAL, "severity": "urgent"}, "severity"),
    ({**SIGNAL, "sourceId": 5}, "sourceId"),
])
def test_invalid_bodies_are_a_400_that_writes_nothing(client, store, body, field):
    before = keys_of(store)
    r = client.post("/api/signals", json=body)
    assert r.status_code == 400
    assert field in r.json["details"]
    assert keys_of(store) == before


@pytest.mark.parametrize("path", ["one command", "transaction"])
def test_signal_and_issue_are_one_atomic_write_nothing_half_done_when_redis_fails(client, store, path):
    before = keys_of(store)
    real = store.r.pipeline

    def failing_pipeline(*args, **kwargs):
        pipe = real(*args, **kwargs)
        pipe.execute = mock.Mock(side_effect=redis.ConnectionError("connection lost at EXEC"))
        return pipe

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(store.r, "pipeline", side_effect=failing_pipeline))
        if path == "one command":  # issue_new.lua: the connection is lost as it is sent
            stack.enter_context(mock.patch.object(Script, "__call__",
                                                  side_effect=redis.ConnectionError("connection lost")))
        else:
            stack.enter_context(mock.patch.object(Issues, "create_one", lambda self, *a, **kw: None))
        r = post(client)
    assert r.status_code == 503
    # Only the issue-number counter (INCR, outside the transaction) may have moved.
    assert keys_of(store) - before <= {store.keys.issue_seq()}
    assert client.get("/api/signals").json["total"] == 0
    assert client.get("/api/issues").json["total"] == 0


def test_signals_list_in_creation_order_with_an_exact_total(client):
    ids = [post(client, type=f"t{i}").json["data"]["signal"]["id"] for i in range(5)]
    r = client.get("/api/signals?limit=2&offset=1")
    assert r.status_code == 200
    assert r.json["total"] == 5
    assert [s["id"] for s in r.json["data"]] == ids[1:3]


def test_signals_filter_by_source_severity_and_project(client):
    post(client, source="sentry", severity="high", projectId="p1")
    post(client, source="sentry", severity="low", projectId="p1")
    post(client, source="sentry", severity="high", projectId="p2")
    post(client, source="github", severity="high", projectId="p1")
    def total(q: str) -> int:
        r = client.get(f"/api/signals?{q}")
        assert r.status_code == 200, r.text
        return int(r.json["total"])
    assert total("source=sentry") == 3
    assert total("severity=high") == 3
    assert total("projectId=p1") == 3
    assert total("source=sentry&severity=high") == 2
    assert total("source=sentry&severity=high&projectId=p1") == 1
    assert total("source=nope") == 0
    r = client.get("/api/signals?source=sentry&severity=high&limit=1&offset=1")
    assert r.json["total"] == 2 and r.json["data"][0]["projectId"] == "p2"


def test_a_filtered_list_leaves_no_temporary_keys_behind(client, store):
    post(client, source="sentry", projectId="p1")
    before = keys_of(store)
    assert client.get("/api/signals?source=sentry&projectId=p1").json["total"] == 1
    assert keys_of(store) == before


@pytest.mark.parametrize("query", ["severity=urgent", "limit=0", "limit=201", "offset=-1", "limit=x"])
def test_bad_list_queries_are_400(client, query):
    r = client.get(f"/api/signals?{query}")
    assert r.status_code == 400 and "error" in r.json


def test_a_signal_is_fetched_by_id_with_its_payload(client):
    signal = post(client).json["data"]["signal"]
    r = client.get(f"/api/signals/{signal['id']}")
    assert r.status_code == 200 and r.json["data"] == signal


@pytest.mark.parametrize("signal_id", ["nope", "x:y", "{a}"])
def test_an_unknown_signal_is_404(client, signal_id):
    r = client.get(f"/api/signals/{signal_id}")
    assert r.status_code == 404 and r.json == {"error": "Signal not found"}


def test_signal_routes_require_the_bearer_key(client):
    assert client.get("/api/signals", auth=False).status_code == 401
    assert client.post("/api/signals", json=SIGNAL, auth=False).status_code == 401


def test_the_openapi_document_describes_signals_and_webhooks(client):
    doc = client.get("/api/openapi.json").json
    assert set(doc["components"]["schemas"]["Signal"]["properties"]) >= {
        "id", "source", "sourceId", "type", "severity", "payload", "issueId", "createdAt"}
    assert "get" in doc["paths"]["/api/signals"] and "post" in doc["paths"]["/api/signals"]
    for provider in ("github", "sentry", "posthog"):
        op = doc["paths"][f"/api/signals/{provider}"]["post"]
        assert "security" not in op and "202" in op["responses"]
