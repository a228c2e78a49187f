"""``POST /api/dispatch/claims/{id}/release`` with ``failed: true``: the session closes as
``failed`` and counts as a strike like an expiry, so an issue that keeps failing is parked for a
human by the server; a plain release stays strike-free; a non-boolean ``failed`` is a 400."""

from __future__ import annotations

import pytest

from loop.dispatch.audit import audit
from tests.conftest import keys_of


@pytest.fixture
def render_prompts() -> bool:
    return False  # these tests claim without a prompt (dispatch renders none)


def _issue(client):
    r = client.post("/api/issues", json={"title": "Always fails", "type": "task", "status": "todo"})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _claim(client):
    r = client.get("/api/dispatch/next")
    assert r.status_code == 200, r.text
    return r.json


def _release(client, claim, **body):
    return client.post(f"/api/dispatch/claims/{claim['claim']['sessionId']}/release",
                       json={"token": claim["claim"]["token"], **body})


def _issue_row(client, issue):
    return client.get(f"/api/issues/{issue['id']}").json["data"]


def _strikes(store, issue):
    return int(store.r.hget(store.keys.dispatch_state(issue["id"]), "strikes") or 0)


def test_a_failed_release_closes_the_session_as_failed_with_its_reason_and_requeues(client, store):
    issue = _issue(client)
    claim = _claim(client)
    r = _release(client, claim, reason="agent command exited with status 3", failed=True)
    assert r.status_code == 200, r.text
    session = r.json["data"]
    assert session["status"] == "failed" and session["reason"] == "agent command exited with status 3"
    assert session["endedAt"] is not None
    assert _issue_row(client, issue)["status"] == "todo"
    assert _strikes(store, issue) == 1
    assert _claim(client)["issue"]["id"] == issue["id"]  # back in the queue
    assert audit(store) == []


def test_a_failed_release_counts_in_the_versions_failed_counter(client, store):
    _issue(client)
    claim = _claim(client)
    # The prompt engine records the version on the session at claim time; do the same here.
    store.r.hset(store.keys.session(claim["claim"]["sessionId"]), "versionId", "v-failed")
    assert _release(client, claim, reason="boom", failed=True).status_code == 200
    stats = store.dispatch.version_stats("v-failed")
    assert stats["failed"] == 1 and stats["released"] == 0


def test_after_the_maximum_number_of_failed_releases_the_issue_is_parked_for_a_human(client, store, clock):
    issue = _issue(client)
    n = store.settings.max_lease_expiries
    for i in range(n):
        clock.advance(1)  # distinct claim times: sessions list oldest claim first
        claim = _claim(client)
        assert claim["issue"]["id"] == issue["id"]
        assert _release(client, claim, reason=f"failure {i + 1}", failed=True).json["data"]["status"] == "failed"
        assert _issue_row(client, issue)["status"] == ("todo" if i + 1 < n else "backlog")
    parked = _issue_row(client, issue)
    assert [lb["name"] for lb in parked["labels"]] == ["needs-human-review"]
    assert parked["agentSessionId"] is None
    assert client.get("/api/dispatch/next").status_code == 204
    assert client.get("/api/dispatch/queue").json["total"] == 0
    sessions = client.get(f"/api/issues/{issue['id']}/sessions").json["data"]
    assert [s["status"] for s in sessions] == ["failed"] * n
    assert [s["reason"] for s in sessions] == [f"failure {i + 1}" for i in range(n)]
    assert audit(store) == []


def test_failed_releases_and_expiries_add_up_to_the_same_strikes(client, store, clock):
    issue = _issue(client)
    n = store.settings.max_lease_expiries
    assert n >= 2
    _claim(client)
    clock.advance(store.settings.lease_seconds)
    store.dispatch.expire_due()
    for _ in range(n - 1):
        assert _release(client, _claim(client), failed=True).status_code == 200
    assert _issue_row(client, issue)["status"] == "backlog"


def test_a_plain_release_is_still_not_a_strike(client, store):
    issue = _issue(client)
    for _ in range(store.settings.max_lease_expiries + 1):
        r = _release(client, _claim(client), reason="not today")
        assert r.json["data"]["status"] == "released"
    # An explicit false is the same as leaving it out.
    r = _release(client, _claim(client), failed=False)
    assert r.json["data"]["status"] == "released" and r.json["data"]["reason"] is None
    assert _strikes(store, issue) == 0
    assert _issue_row(client, issue)["status"] == "todo"


@pytest.mark.parametrize("bad", ["true", 1, 0, None, [], {"yes": True}])
def test_a_failed_flag_that_is_not_a_boolean_is_a_400_and_changes_nothing(client, store, bad):
    issue = _issue(client)
    claim = _claim(client)
    before = {k: store.r.dump(k) for k in keys_of(store)}
    r = _release(client, claim, failed=bad)
    assert r.status_code == 400, r.text
    assert "failed" in r.json["details"]
    assert {k: store.r.dump(k) for k in keys_of(store)} == before
    assert client.get(f"/api/dispatch/claims/{claim['claim']['sessionId']}").json["data"]["status"] == "active"
    assert _issue_row(client, issue)["status"] == "in_progress"


def test_a_failed_release_of_a_session_that_is_no_longer_active_is_409_and_no_strike(client, store):
    issue = _issue(client)
    claim = _claim(client)
    assert _release(client, claim).status_code == 200
    r = _release(client, claim, failed=True)
    assert r.status_code == 409
    assert _strikes(store, issue) == 0


def test_the_openapi_documents_the_failed_flag(client):
    spec = client.get("/api/openapi.json").json
    op = spec["paths"]["/api/dispatch/claims/{session_id}/release"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["failed"]["type"] == "boolean"
    assert schema["properties"]["failed"]["default"] is False
