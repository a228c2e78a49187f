"""Retention (issue 10, item 16): closed sessions, soft-deleted issues and signal payloads are
purged by the worker after their configured age, in bounded batches, never anything live."""

from __future__ import annotations

import dataclasses

import pytest

from loop.keys import ID_WIDTH
from loop.settings import Settings
from tests.conftest import keys_of
from workers import retention, runner

DAY = 24 * 3600


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, session_retention_seconds=7 * DAY, deleted_issue_retention_seconds=30 * DAY,
                               signal_payload_retention_seconds=90 * DAY)


def made(client, path, body):
    r = client.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json["data"]


def signal(client, payload=None):
    return made(client, "/api/signals", {"source": "sentry", "type": "error", "severity": "high",
                                         "payload": payload or {"message": "boom"}})


def closed_session(client, store):
    """A claim released at once: the issue goes back to todo, the session is closed."""
    issue = made(client, "/api/issues", {"title": "Work", "type": "task", "status": "todo"})
    claim = client.get("/api/dispatch/next").json["claim"]
    assert client.post(f"/api/dispatch/claims/{claim['sessionId']}/release", json={}).status_code == 200
    return issue, claim["sessionId"]


def test_the_worker_runs_the_retention_purge_periodically():
    assert (retention.RETENTION_SWEEP_SECONDS, retention.sweep) in runner.PERIODIC


def test_retention_settings_are_read_from_the_environment_and_zero_keeps_forever():
    env = {"LOOP_API_KEY": "k", "LOOP_SESSION_RETENTION_SECONDS": "0",
           "LOOP_DELETED_ISSUE_RETENTION_SECONDS": "3600", "LOOP_SIGNAL_PAYLOAD_RETENTION_SECONDS": "86400"}
    s = Settings.from_env(env)
    assert (s.session_retention_seconds, s.deleted_issue_retention_seconds, s.signal_payload_retention_seconds) == (
        0, 3600, 86400)


def test_a_signal_payload_is_stored_once_on_its_issue_and_served_on_both(client, store):
    created = signal(client, {"message": "boom", "n": 1})
    sid, iid = created["signal"]["id"], created["issue"]["id"]
    assert store.r.hget(store.keys.row("signal", sid), "payload") is None
    assert client.get(f"/api/signals/{sid}").json["data"]["payload"] == {"message": "boom", "n": 1}
    assert client.get("/api/signals").json["data"][0]["payload"] == {"message": "boom", "n": 1}
    assert client.get(f"/api/issues/{iid}").json["data"]["signalPayload"] == {"message": "boom", "n": 1}


def test_a_closed_session_is_purged_after_its_retention_and_not_before(client, store, clock):
    issue, sid = closed_session(client, store)
    clock.advance(7 * DAY - 1)
    assert retention.purge(store)["sessions"] == 0
    assert client.get(f"/api/issues/{issue['id']}/sessions").json["data"]
    clock.advance(2)
    assert retention.purge(store)["sessions"] == 1
    assert not store.r.exists(store.keys.session(sid))
    assert client.get(f"/api/issues/{issue['id']}/sessions").json["data"] == []
    assert store.r.zcard(store.keys.retention("sessions")) == 0


def test_an_active_session_is_never_purged(client, store, clock):
    made(client, "/api/issues", {"title": "Work", "type": "task", "status": "todo"})
    claim = client.get("/api/dispatch/next").json["claim"]
    # Even if it were scheduled by mistake, an active claim stays.
    store.r.zadd(store.keys.retention("sessions"), {claim["sessionId"]: 0})
    clock.advance(365 * DAY)
    retention.purge_sessions(store)
    assert store.r.hget(store.keys.session(claim["sessionId"]), "status") == "active"


def test_a_signal_payload_is_dropped_after_its_retention_and_the_signal_and_issue_stay(client, store, clock):
    created = signal(client)
    sid, iid = created["signal"]["id"], created["issue"]["id"]
    clock.advance(90 * DAY - 1)
    assert retention.purge(store)["payloads"] == 0
    clock.advance(2)
    assert retention.purge(store)["payloads"] == 1
    assert client.get(f"/api/signals/{sid}").json["data"]["payload"] is None
    assert client.get(f"/api/issues/{iid}").json["data"]["signalPayload"] is None
    assert client.get(f"/api/issues/{iid}").json["data"]["title"] == created["issue"]["title"]


def test_a_soft_deleted_issue_is_purged_with_every_side_key_and_index_entry(client, store, clock):
    before = keys_of(store)
    label = made(client, "/api/labels", {"name": "bug", "color": "#ff0000"})
    created = signal(client)
    iid = created["issue"]["id"]
    other = made(client, "/api/issues", {"title": "Other", "type": "task", "status": "backlog"})
    client.post(f"/api/issues/{iid}/labels", json={"labelId": label["id"]})
    made(client, f"/api/issues/{iid}/comments", {"body": "hi", "authorName": "a", "authorType": "human"})
    made(client, f"/api/issues/{iid}/relations", {"type": "blocks", "relatedIssueId": other["id"]})
    claim = client.get("/api/dispatch/next").json["claim"]
    assert client.delete(f"/api/issues/{iid}").status_code in (200, 204)
    clock.advance(30 * DAY + 1)
    done = retention.purge(store)
    assert done["issues"] == 1
    left = {k for k in keys_of(store) - before if iid in k or claim["sessionId"] in k or created["signal"]["id"] in k}
    assert left == set()
    assert client.get("/api/signals").json["total"] == 0
    assert client.get(f"/api/issues/{other['id']}").json["data"]["relations"] == []
    ids = store.r.getrange(store.keys.issue_ids(), (created["issue"]["number"] - 1) * ID_WIDTH,
                           created["issue"]["number"] * ID_WIDTH - 1)
    assert iid not in ids
    for kind in ("sessions", "issues", "payloads"):
        assert store.r.zcard(store.keys.retention(kind)) == 0
    # The other issue (live) is untouched and still listed.
    assert [i["id"] for i in client.get("/api/issues").json["data"]] == [other["id"]]


def test_a_live_issue_is_never_purged(client, store, clock):
    issue = made(client, "/api/issues", {"title": "Live", "type": "task"})
    store.r.zadd(store.keys.retention("issues"), {issue["id"]: 0})
    clock.advance(365 * DAY)
    assert retention.purge_issues(store) == 0
    assert client.get(f"/api/issues/{issue['id']}").status_code == 200


def test_a_purge_run_removes_at_most_one_batch_of_each_kind(client, store, clock):
    for _ in range(5):
        issue = made(client, "/api/issues", {"title": "Gone", "type": "task"})
        client.delete(f"/api/issues/{issue['id']}")
    clock.advance(31 * DAY)
    assert retention.purge(store, batch=2)["issues"] == 2
    assert retention.purge(store, batch=2)["issues"] == 2
    assert retention.purge(store, batch=2)["issues"] == 1
    assert retention.purge(store, batch=2)["issues"] == 0


def test_zero_retention_keeps_forever(client, store, clock, settings):
    store.settings = dataclasses.replace(settings, session_retention_seconds=0, deleted_issue_retention_seconds=0,
                                         signal_payload_retention_seconds=0)
    signal(client)
    closed_session(client, store)
    clock.advance(3650 * DAY)
    assert retention.purge(store) == {"sessions": 0, "payloads": 0, "issues": 0}


def test_purging_an_issue_removes_relations_towards_it_and_its_signal_from_the_filter_counts(store, clock, settings):
    from dataclasses import replace

    from loop.store.reindex import check
    from workers.retention import purge

    created = store.signals.create({"source": "s", "type": "t", "severity": "high", "payload": {}},
                                   {"title": "from a signal", "type": "signal"})
    issue = created.issue
    other = store.issues.create({"title": "points at it", "type": "task", "status": "todo"})
    store.relations.create(other["id"], "related", issue["id"])
    store.issues.delete(issue["id"])
    store.settings = replace(settings, deleted_issue_retention_seconds=60)
    clock.advance(120_000)
    assert purge(store)["issues"] == 1
    assert store.relations.outgoing(other["id"]) == []
    assert check(store) == []
