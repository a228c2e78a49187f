"""Leases and sessions: heartbeat, release, completion, expiry with an injected clock, fencing,
the N-expiries rule, prompt wiring and per-version counters."""

from __future__ import annotations

import pytest
import redis

from loop.dispatch.audit import audit
from loop.dispatch.sessions import stage_version
from loop.errors import LoopError
from tests.conftest import keys_of

LEASE = 900  # Settings.lease_seconds default (the test settings keep it)


def _issue(client, **fields):
    r = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _claim(client, **params):
    r = client.get("/api/dispatch/next", params=params)
    assert r.status_code == 200, r.text
    return r.json


def _session(client, sid):
    return client.get(f"/api/dispatch/claims/{sid}").json["data"]


def _status(client, issue):
    return client.get(f"/api/issues/{issue['id']}").json["data"]["status"]


@pytest.fixture
def render_prompts() -> bool:
    return False  # these tests claim without a prompt (dispatch renders none)


def test_an_unrenewed_lease_expires_and_the_issue_is_dispatched_again(client, store, clock):
    issue = _issue(client)
    first = _claim(client)["claim"]
    clock.advance(LEASE - 1)
    assert client.get("/api/dispatch/next").status_code == 204
    clock.advance(1)
    second = _claim(client)
    assert second["issue"]["id"] == issue["id"] and second["claim"]["sessionId"] != first["sessionId"]
    old = _session(client, first["sessionId"])
    assert old["status"] == "expired" and old["reason"] == "lease expired" and old["endedAt"]
    assert [s["status"] for s in client.get(f"/api/issues/{issue['id']}/sessions").json["data"]] == [
        "expired", "active"]
    assert audit(store) == []


def test_the_queue_and_the_periodic_job_requeue_expired_leases_too(client, store, clock):
    from workers.leases import expire_leases

    issue = _issue(client)
    _claim(client)
    clock.advance(LEASE + 5)
    assert expire_leases(store) == 1
    assert _status(client, issue) == "todo"
    assert expire_leases(store) == 0
    _claim(client)
    clock.advance(LEASE)
    assert client.get("/api/dispatch/queue").json["total"] == 1
    assert audit(store) == []


def test_a_heartbeat_extends_the_lease(client, store, clock):
    issue = _issue(client)
    claim = _claim(client)["claim"]
    clock.advance(LEASE - 10)
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/heartbeat")
    assert r.status_code == 200, r.text
    assert r.json["data"]["expiresAt"] == "2026-02-20T12:29:50.000Z"
    clock.advance(LEASE - 10)
    assert store.dispatch.expire_due() == 0
    assert _status(client, issue) == "in_progress"
    clock.advance(10)
    assert store.dispatch.expire_due() == 1
    assert _status(client, issue) == "todo"


def test_a_heartbeat_after_the_lease_ran_out_is_409_and_requeues(client, store, clock):
    issue = _issue(client)
    claim = _claim(client)["claim"]
    clock.advance(LEASE)
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/heartbeat", json={"token": claim["token"]})
    assert r.status_code == 409 and "expired" in r.json["error"]
    assert _status(client, issue) == "todo" and _session(client, claim["sessionId"])["status"] == "expired"


def test_release_gives_the_issue_back_with_the_reason(client, store):
    issue = _issue(client)
    claim = _claim(client)["claim"]
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release", json={"reason": "needs credentials"})
    assert r.status_code == 200, r.text
    assert r.json["data"]["status"] == "released" and r.json["data"]["reason"] == "needs credentials"
    fetched = client.get(f"/api/issues/{issue['id']}").json["data"]
    assert fetched["status"] == "todo" and fetched["agentSessionId"] is None
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release")
    assert r.status_code == 409 and r.json["error"] == "The session is released, not active"
    assert _claim(client)["issue"]["id"] == issue["id"]
    assert audit(store) == []


def test_only_the_claiming_key_or_the_token_holder_may_heartbeat_or_release(client, store):
    _issue(client)
    claim = _claim(client)["claim"]
    other = client.post("/api/keys", json={"name": "agent-2"}).json["data"]["key"]
    as_other = {"Authorization": f"Bearer {other}"}
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/heartbeat", headers=as_other)
    assert r.status_code == 403
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release",
                    headers={**as_other, "X-Loop-Claim-Token": "claim_wrong"})
    assert r.status_code == 409
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release",
                    headers={**as_other, "X-Loop-Claim-Token": claim["token"]})
    assert r.status_code == 200 and r.json["data"]["status"] == "released"


def test_the_agent_name_is_the_api_keys_name(client):
    issue = _issue(client)
    key = client.post("/api/keys", json={"name": "claude-1"}).json["data"]["key"]
    r = client.get("/api/dispatch/next", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    [s] = client.get(f"/api/issues/{issue['id']}/sessions").json["data"]
    assert s["agentName"] == "claude-1"


def test_patching_done_with_the_token_completes_the_session_with_the_summary(client, store, clock):
    issue = _issue(client)
    claim = _claim(client)["claim"]
    clock.advance(60)
    r = client.patch(f"/api/issues/{issue['id']}", json={"status": "done", "agentSummary": "Fixed it"},
                     headers={"X-Loop-Claim-Token": claim["token"]})
    assert r.status_code == 200, r.text
    assert r.json["data"]["agentSummary"] == "Fixed it" and r.json["data"]["completedAt"]
    s = _session(client, claim["sessionId"])
    assert s["status"] == "completed" and s["summary"] == "Fixed it" and s["endedAt"] == "2026-02-20T12:01:00.000Z"
    assert store.r.zcard(store.keys.dispatch_leases()) == 0
    clock.advance(LEASE * 2)
    assert store.dispatch.expire_due() == 0 and _status(client, issue) == "done"
    assert audit(store) == []


def test_a_stale_token_is_rejected_with_409_and_writes_nothing(client, store, clock):
    issue = _issue(client)
    first = _claim(client)["claim"]
    clock.advance(LEASE)
    store.dispatch.expire_due()
    second = _claim(client)["claim"]
    before = keys_of(store), store.r.hgetall(store.keys.issue(issue["id"]))
    r = client.patch(f"/api/issues/{issue['id']}", json={"status": "done"},
                     headers={"X-Loop-Claim-Token": first["token"]})
    assert r.status_code == 409 and r.json["error"].startswith("Stale claim token")
    assert (keys_of(store), store.r.hgetall(store.keys.issue(issue["id"]))) == before
    r = client.patch(f"/api/issues/{issue['id']}", json={"title": "x"}, headers={"X-Loop-Claim-Token": "claim_junk"})
    assert r.status_code == 409
    r = client.patch(f"/api/issues/{issue['id']}", json={"title": "renamed"},
                     headers={"X-Loop-Claim-Token": second["token"]})
    assert r.status_code == 200 and _session(client, second["sessionId"])["status"] == "active"


def test_an_expired_but_unswept_lease_fences_its_token(client, store, clock):
    issue = _issue(client)
    claim = _claim(client)["claim"]
    clock.advance(LEASE + 1)
    r = client.patch(f"/api/issues/{issue['id']}", json={"status": "done"},
                     headers={"X-Loop-Claim-Token": claim["token"]})
    assert r.status_code == 409 and "expired" in r.json["error"]


def test_a_token_on_an_issue_that_was_never_claimed_is_stale(client):
    issue = _issue(client)
    r = client.patch(f"/api/issues/{issue['id']}", json={"status": "done"}, headers={"X-Loop-Claim-Token": "claim_x"})
    assert r.status_code == 409 and _status(client, issue) == "todo"


def test_a_plain_patch_without_a_token_overrides_the_claim(client, store):
    issue = _issue(client)
    claim = _claim(client)["claim"]
    r = client.patch(f"/api/issues/{issue['id']}", json={"status": "todo"})
    assert r.status_code == 200
    s = _session(client, claim["sessionId"])
    assert s["status"] == "released" and s["reason"] == "issue status set to todo"
    assert client.get("/api/dispatch/queue").json["total"] == 1
    claim = _claim(client)["claim"]
    assert client.patch(f"/api/issues/{issue['id']}", json={"status": "done"}).status_code == 200
    assert _session(client, claim["sessionId"])["status"] == "completed"
    claim_issue = _issue(client)
    claim = _claim(client)["claim"]
    client.delete(f"/api/issues/{claim_issue['id']}")
    assert _session(client, claim["sessionId"]) | {"endedAt": None} == _session(client, claim["sessionId"]) | {
        "status": "released", "reason": "issue deleted", "endedAt": None}
    assert audit(store) == []


def test_after_the_maximum_number_of_expiries_the_issue_is_parked_for_a_human(client, store, clock):
    issue = _issue(client)
    for n in range(store.settings.max_lease_expiries):
        assert _claim(client)["issue"]["id"] == issue["id"]
        clock.advance(LEASE)
        store.dispatch.expire_due()
        expected = "todo" if n + 1 < store.settings.max_lease_expiries else "backlog"
        assert _status(client, issue) == expected
    assert client.get("/api/dispatch/next").status_code == 204
    labels = [lb["name"] for lb in client.get(f"/api/issues/{issue['id']}").json["data"]["labels"]]
    assert labels == ["needs-human-review"]
    label_id = store.r.hget(store.keys.label_names(), "needs-human-review")
    assert client.get("/api/issues", params={"labelId": label_id}).json["total"] == 1
    # A person puts it back: a fresh set of strikes.
    client.patch(f"/api/issues/{issue['id']}", json={"status": "todo"})
    _claim(client)
    clock.advance(LEASE)
    store.dispatch.expire_due()
    assert _status(client, issue) == "todo"
    assert audit(store) == []


class _Prompts:
    """A prompt engine that renders "Do #n" with version v1 and, asked to ``record`` (dispatch
    does), records it on the claim's session the way the real engine does."""

    def __init__(self, store, fail: bool = False) -> None:
        self.store = store
        self.fail = fail
        self.calls: list[tuple[dict, dict]] = []

    def render_for_dispatch(self, issue, claim=None, record=False):
        self.calls.append((issue, claim))
        if self.fail:
            raise LoopError("unknown partial 'nope'")
        if record:
            pipe = self.store.r.pipeline(transaction=True)
            stage_version(pipe, self.store.keys, claim["sessionId"], "v1")
            pipe.execute()
        return f"Do #{issue['number']}", {"templateSlug": "s", "templateId": "t", "versionId": "v1",
                                          "versionNumber": 1, "reviewUrl": "POST /api/prompt-reviews"}


def test_the_prompt_engine_renders_the_claimed_issue_and_the_version_is_counted(client, store, clock, monkeypatch):
    prompts = _Prompts(store)
    monkeypatch.setattr(store.dispatch, "prompts", prompts)
    a, b = _issue(client, priority=1, description="the whole row"), _issue(client, priority=2)
    body = _claim(client)
    assert body["prompt"] == f"Do #{a['number']}" and body["meta"]["versionId"] == "v1"
    assert body["data"]["prompt"] == body["prompt"]
    issue_row, claim = prompts.calls[0]
    assert issue_row["status"] == "in_progress" and claim["sessionId"] == body["claim"]["sessionId"]
    assert issue_row["createdAt"] == clock.now_ms() and issue_row["description"] == "the whole row"
    assert _session(client, body["claim"]["sessionId"])["versionId"] == "v1"
    clock.advance(120)
    client.patch(f"/api/issues/{a['id']}", json={"status": "done"}, headers={"X-Loop-Claim-Token": body["claim"]["token"]})
    second = _claim(client)["claim"]
    client.post(f"/api/dispatch/claims/{second['sessionId']}/release")
    assert store.dispatch.version_stats("v1") == {"dispatched": 2, "completed": 1, "failed": 0, "expired": 0,
                                                  "released": 1, "completedDurationMsSum": 120_000}
    assert store.dispatch.version_stats("unknown")["dispatched"] == 0
    assert [s["id"] for s in store.dispatch.sessions_for_issue(b["id"])] == [second["sessionId"]]


def test_a_prompt_that_cannot_render_returns_the_issue_to_the_queue_and_says_why(client, store, monkeypatch):
    monkeypatch.setattr(store.dispatch, "prompts", _Prompts(store, fail=True))
    issue = _issue(client)
    r = client.get("/api/dispatch/next")
    assert r.status_code == 500
    assert "unknown partial 'nope'" in r.json["error"] and f"#{issue['number']}" in r.json["error"]
    assert _status(client, issue) == "todo"
    [s] = client.get(f"/api/issues/{issue['id']}/sessions").json["data"]
    assert s["status"] == "released" and "unknown partial" in s["reason"]
    assert audit(store) == []


@pytest.mark.parametrize("error", [LoopError("unknown partial 'nope'"), RuntimeError("engine bug"),
                                   redis.exceptions.ConnectionError("redis blip")])
def test_render_failures_are_not_strikes_so_a_broken_template_never_parks_the_queue(
        client, store, monkeypatch, settings, error):
    prompts = _Prompts(store)

    def broken(issue, claim=None, record=False):
        raise error

    monkeypatch.setattr(prompts, "render_for_dispatch", broken)
    monkeypatch.setattr(store.dispatch, "prompts", prompts)
    issue = _issue(client)
    for _ in range(settings.max_lease_expiries + 1):
        assert client.get("/api/dispatch/next").status_code in (500, 503)
    assert _status(client, issue) == "todo"
    assert store.r.hget(store.keys.dispatch_state(issue["id"]), "strikes") is None
    sessions = client.get(f"/api/issues/{issue['id']}/sessions").json["data"]
    assert [s["status"] for s in sessions] == ["released"] * (settings.max_lease_expiries + 1)
    assert client.get("/api/labels").json["total"] == 0
    assert audit(store) == []


def test_workers_run_the_lease_sweep_periodically_until_stopped(settings, monkeypatch):
    import threading

    from workers import leases, runner

    assert (leases.LEASE_SWEEP_SECONDS, leases.sweep) in runner.PERIODIC
    ran = threading.Event()
    monkeypatch.setattr(runner, "PERIODIC", [(0.01, lambda s: ran.set())])
    stop = threading.Event()
    runner.start_periodic(settings, stop)
    try:
        assert ran.wait(5)
    finally:
        stop.set()
