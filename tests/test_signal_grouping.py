"""Signals with a fingerprint group under one open triage issue (issue 14)."""

from __future__ import annotations

import threading

from loop.store.signals import PRIORITY, title_for
from tests.conftest import keys_of

SIGNAL = {"source": "sentry", "type": "error", "severity": "low",
          "payload": {"message": "KeyError: 'user'"}, "fingerprint": "sentry:issue:42"}


def post(client, **overrides):
    return client.post("/api/signals", json={**SIGNAL, **overrides})


def test_a_second_signal_with_the_same_fingerprint_joins_the_open_issue(client, clock):
    first = post(client).json["data"]
    clock.advance(60)
    r = post(client, payload={"message": "again", "n": 2})
    assert r.status_code == 201, r.text
    second = r.json["data"]
    assert (first["grouped"], second["grouped"]) == (False, True)
    assert second["issue"]["id"] == first["issue"]["id"]
    assert second["issue"]["signalCount"] == 2
    assert second["issue"]["lastSignalAt"] == second["signal"]["createdAt"] != first["signal"]["createdAt"]
    # Nothing is dropped: both signals are listed, each with its own payload.
    listed = client.get("/api/signals").json
    assert listed["total"] == 2
    assert {s["id"]: s["payload"] for s in listed["data"]} == {
        first["signal"]["id"]: SIGNAL["payload"], second["signal"]["id"]: {"message": "again", "n": 2}}
    assert client.get("/api/issues?type=signal").json["total"] == 1
    assert [r["payload"] for r in client.get(f"/api/issues/{first['issue']['id']}").json["data"]["signalRecent"]] == [
        {"message": "again", "n": 2}]


def test_signals_without_a_fingerprint_or_with_another_one_open_their_own_issues(client):
    a = post(client).json["data"]
    b = post(client, fingerprint="sentry:issue:43").json["data"]
    c = client.post("/api/signals", json={k: v for k, v in SIGNAL.items() if k != "fingerprint"}).json["data"]
    assert len({a["issue"]["id"], b["issue"]["id"], c["issue"]["id"]}) == 3
    assert c["issue"]["signalCount"] == 1 and not c["grouped"]


def test_a_more_severe_signal_raises_the_priority_and_rescores_it_in_dispatch_but_never_lowers_it(client, store):
    issue = post(client).json["data"]["issue"]
    assert issue["priority"] == PRIORITY["low"]
    before = store.r.zscore(store.keys.dispatch_ready(), f"{issue['id']}|")
    raised = post(client, severity="critical").json["data"]["issue"]
    assert raised["priority"] == PRIORITY["critical"]
    after = store.r.zscore(store.keys.dispatch_ready(), f"{issue['id']}|")
    assert before is not None and after is not None and after > before
    assert post(client, severity="low").json["data"]["issue"]["priority"] == PRIORITY["critical"]
    assert store.r.zscore(store.keys.dispatch_ready(), f"{issue['id']}|") == after


def test_after_the_issue_is_closed_the_next_signal_opens_a_recurrence_related_to_it(client):
    first = post(client).json["data"]["issue"]
    assert client.patch(f"/api/issues/{first['id']}", json={"status": "done"}).status_code == 200
    r = post(client).json["data"]
    assert not r["grouped"] and r["issue"]["id"] != first["id"]
    assert r["issue"]["signalCount"] == 1
    assert "Recurrence" in r["issue"]["description"] and f"#{first['number']}" in r["issue"]["description"]
    relations = client.get(f"/api/issues/{r['issue']['id']}").json["data"]["relations"]
    assert [(x["type"], x["relatedIssueId"]) for x in relations] == [("related", first["id"])]
    # The new issue is the group now.
    assert post(client).json["data"]["issue"]["id"] == r["issue"]["id"]


def test_the_closed_issue_lists_its_recurrence_among_its_incoming_relations(client):
    first = post(client).json["data"]["issue"]
    client.patch(f"/api/issues/{first['id']}", json={"status": "done"})
    recurrence = post(client).json["data"]["issue"]
    incoming = client.get(f"/api/issues/{first['id']}").json["data"]["incomingRelations"]
    assert [(x["type"], x["issueId"]) for x in incoming] == [("related", recurrence["id"])]


def test_a_canceled_or_deleted_issue_ends_its_group_too(client):
    first = post(client).json["data"]["issue"]
    client.patch(f"/api/issues/{first['id']}", json={"status": "canceled"})
    second = post(client).json["data"]["issue"]
    assert second["id"] != first["id"]
    assert client.delete(f"/api/issues/{second['id']}").status_code == 204
    third = post(client).json["data"]
    assert not third["grouped"] and third["issue"]["id"] not in (first["id"], second["id"])


def test_fifty_concurrent_signals_with_one_fingerprint_give_one_issue_with_signal_count_fifty(store):
    signals = store.signals
    barrier = threading.Barrier(50)
    results, errors = [], []

    def send(i: int) -> None:
        try:
            barrier.wait()
            data = {**SIGNAL, "payload": {"message": f"event {i}"}}
            issue = signals.issue_data("sentry", "low", data["payload"], title_for("sentry", "error", data["payload"]))
            results.append(signals.create(data, issue))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    issue_ids = {r.issue["id"] for r in results}
    assert len(issue_ids) == 1
    issue = store.issues.get(issue_ids.pop())
    assert issue["signalCount"] == 50
    assert sum(not r.grouped for r in results) == 1
    assert store.r.zcard(store.keys.signal_index()) == 50
    assert store.issues.list({"type": ["signal"]}, 10, 0)[1] == 1


def test_a_bad_fingerprint_is_a_400_naming_it_and_writes_nothing(client, store):
    before = keys_of(store)
    for bad in ("x" * 201, 42, ""):
        r = post(client, fingerprint=bad)
        assert r.status_code == 400, r.text
        assert "fingerprint" in r.json["details"]
    assert keys_of(store) == before


def test_the_triage_prompt_shows_the_group_count_times_and_recent_payloads(client, clock):
    post(client)
    clock.advance(60)
    post(client, payload={"message": "second time", "marker": "recent-payload-2"})
    prompt = client.get("/api/dispatch/next").json["prompt"]
    assert "2 signals with the same fingerprint" in prompt
    assert "recent-payload-2" in prompt


def test_the_goal_partial_shows_the_goal_trend(client):
    g = client.post("/api/goals", json={"title": "Fewer errors", "metric": "errors", "targetValue": 1,
                                        "unit": "/h"}).json["data"]
    project = client.post("/api/projects", json={"name": "P", "goalId": g["id"]}).json["data"]
    for value, at in ((40, "2026-01-01T00:00:00Z"), (25, "2026-01-02T00:00:00Z")):
        client.post(f"/api/goals/{g['id']}/readings", json={"value": value, "at": at})
    post(client, projectId=project["id"])
    prompt = client.get("/api/dispatch/next").json["prompt"]
    assert "Last readings, newest first: 25/h at 2026-01-02T00:00:00.000Z; 40/h at 2026-01-01" in prompt
