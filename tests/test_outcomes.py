"""Outcomes (issue 13): a monitor done + invalidated records a new signal and its triage issue in
the monitor's own transaction; the verified hypothesis gets the same outcome; never twice."""

from __future__ import annotations

import pytest
import redis

from loop.dispatch.audit import audit
from loop.store.outcomes import MARKER


@pytest.fixture
def render_prompts() -> bool:
    return False


def _issue(client, **fields):
    r = client.post("/api/issues", json={"title": "t", "status": "todo", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _chain(client, relate=True):
    signal = _issue(client, title="Conversion dropped", type="signal", status="triage")
    hyp = _issue(client, title="Signup form is broken", type="hypothesis", parentId=signal["id"], status="done")
    monitor = _issue(client, title="Check conversion recovers", type="monitor", parentId=signal["id"], priority=2)
    if relate:
        r = client.post(f"/api/issues/{monitor['id']}/relations", json={"type": "related", "relatedIssueId": hyp["id"]})
        assert r.status_code == 201, r.text
    return signal, hyp, monitor


def _loop_signals(client):
    return client.get("/api/signals?source=loop").json


def test_an_invalidated_monitor_records_a_loop_signal_with_its_triage_issue_related_to_the_monitor(client, store):
    _, hyp, monitor = _chain(client)
    r = client.patch(f"/api/issues/{monitor['id']}", json={
        "status": "done", "outcome": "invalidated", "agentSummary": "conversion still 20% down"})
    assert r.status_code == 200, r.text
    assert r.json["data"]["outcome"] == "invalidated"
    listed = _loop_signals(client)
    assert listed["total"] == 1
    sig = listed["data"][0]
    assert (sig["type"], sig["severity"]) == ("monitor.invalidated", "high")
    assert sig["payload"]["monitorId"] == monitor["id"] and sig["payload"]["hypothesisId"] == hyp["id"]
    assert sig["payload"]["summary"] == "conversion still 20% down"
    triage = client.get(f"/api/issues/{sig['issueId']}").json["data"]
    assert triage["type"] == "signal" and triage["signalSource"] == "loop"
    assert [(x["type"], x["relatedIssueId"]) for x in triage["relations"]] == [("related", monitor["id"])]
    assert client.get(f"/api/issues/{hyp['id']}").json["data"]["outcome"] == "invalidated"
    assert audit(store) == []


def test_setting_the_same_outcome_again_or_resending_the_patch_never_records_a_second_signal(client, store):
    _, _, monitor = _chain(client)
    body = {"status": "done", "outcome": "invalidated"}
    for _ in range(2):
        assert client.patch(f"/api/issues/{monitor['id']}", json=body,
                            headers={"Idempotency-Key": "same"}).status_code == 200
    assert client.patch(f"/api/issues/{monitor['id']}", json=body).status_code == 200
    # reopened and invalidated again: still the one signal of this monitor
    assert client.patch(f"/api/issues/{monitor['id']}", json={"status": "todo"}).status_code == 200
    assert client.patch(f"/api/issues/{monitor['id']}", json=body).status_code == 200
    assert _loop_signals(client)["total"] == 1


def test_a_validated_monitor_closes_the_chain_without_a_signal_and_validates_its_hypothesis(client):
    _, hyp, monitor = _chain(client)
    assert client.patch(f"/api/issues/{monitor['id']}", json={"status": "done", "outcome": "validated"}).status_code == 200
    assert _loop_signals(client)["total"] == 0
    assert client.get(f"/api/issues/{hyp['id']}").json["data"]["outcome"] == "validated"


def test_without_a_relation_the_single_hypothesis_under_the_same_parent_is_the_verified_one(client):
    _, hyp, monitor = _chain(client, relate=False)
    client.patch(f"/api/issues/{monitor['id']}", json={"status": "done", "outcome": "invalidated"})
    assert client.get(f"/api/issues/{hyp['id']}").json["data"]["outcome"] == "invalidated"
    assert _loop_signals(client)["data"][0]["payload"]["hypothesisId"] == hyp["id"]


def test_a_crash_before_exec_leaves_neither_the_monitor_done_nor_a_signal(client, store, monkeypatch):
    _, hyp, monitor = _chain(client)
    before = store.r.hgetall(store.keys.issue(monitor["id"]))
    real = redis.client.Pipeline.execute

    def crash(self, *a, **kw):
        if self.command_stack:  # the MULTI of the monitor's write: dies before EXEC
            raise redis.ConnectionError("crash")
        return real(self, *a, **kw)

    monkeypatch.setattr(redis.client.Pipeline, "execute", crash)
    with pytest.raises(Exception):  # noqa: B017 (whatever surfaces, nothing may be half-written)
        store.issues.update(monitor["id"], {"status": "done", "outcome": "invalidated"})
    monkeypatch.setattr(redis.client.Pipeline, "execute", real)
    assert store.r.hgetall(store.keys.issue(monitor["id"])) == before
    assert _loop_signals(client)["total"] == 0
    assert store.r.hget(store.keys.dispatch_state(monitor["id"]), MARKER) is None
    assert client.get(f"/api/issues/{hyp['id']}").json["data"]["outcome"] is None


def test_the_signal_and_the_monitor_write_are_one_exec(store):
    """Every write of the outcome is queued on the monitor's MULTI (one EXEC holds them all)."""
    signal = store.issues.create({"title": "s", "type": "signal"})
    store.issues.create({"title": "h", "type": "hypothesis", "parentId": signal["id"]})
    monitor = store.issues.create({"title": "m", "type": "monitor", "parentId": signal["id"], "status": "todo"})
    execs: list[list[str]] = []
    real = redis.client.Pipeline.execute

    def spy(self, *a, **kw):
        if self.transaction and self.command_stack:
            execs.append([str(c[0][0]) for c in self.command_stack])
        return real(self, *a, **kw)

    import unittest.mock as mock
    with mock.patch.object(redis.client.Pipeline, "execute", spy):
        store.issues.update(monitor["id"], {"status": "done", "outcome": "invalidated"})
    assert len(execs) == 1
    assert store.signals.list({"source": "loop"}, 10, 0)[1] == 1
