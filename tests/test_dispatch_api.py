"""GET /api/dispatch/next and /queue over the API: claims, 204s, project filter, pagination."""

from __future__ import annotations

import pytest

from loop.dispatch.audit import audit
from tests.conftest import keys_of


def _issue(client, **fields):
    body = {"title": "t", "type": "task", "status": "todo", **fields}
    r = client.post("/api/issues", json=body)
    assert r.status_code == 201, r.text
    return r.json["data"]


@pytest.fixture
def no_prompts(store, monkeypatch):
    """Dispatch without the prompt engine (prompt and meta null), whatever is installed."""
    monkeypatch.setattr(store.dispatch, "prompts", None)


def test_next_answers_204_with_an_empty_body_when_the_store_is_empty(client):
    r = client.get("/api/dispatch/next")
    assert r.status_code == 204
    assert r.content == b""


@pytest.mark.parametrize("status", ["triage", "backlog", "in_progress", "done", "canceled"])
def test_issues_outside_todo_are_never_dispatched(client, status):
    _issue(client, status=status)
    assert client.get("/api/dispatch/next").status_code == 204
    assert client.get("/api/dispatch/queue").json == {"data": [], "total": 0}


def test_a_deleted_todo_issue_is_not_dispatched(client):
    issue = _issue(client)
    assert client.delete(f"/api/issues/{issue['id']}").status_code == 204
    assert client.get("/api/dispatch/next").status_code == 204


def test_next_without_a_key_is_401(client):
    _issue(client)
    r = client.get("/api/dispatch/next", auth=False)
    assert r.status_code == 401
    assert client.get("/api/dispatch/queue").json["total"] == 1


def test_next_claims_the_top_issue_and_returns_it_with_a_claim(client, store, no_prompts):
    _issue(client, title="low", priority=4)
    top = _issue(client, title="urgent", priority=1, type="signal")
    r = client.get("/api/dispatch/next")
    assert r.status_code == 200, r.text
    body = r.json
    assert body["issue"] == {"id": top["id"], "number": top["number"], "title": "urgent", "type": "signal",
                             "priority": 1, "status": "in_progress"}
    assert body["prompt"] is None and body["meta"] is None
    claim = body["claim"]
    assert set(claim) == {"sessionId", "token", "expiresAt"} and claim["token"].startswith("claim_")
    assert claim["expiresAt"] == "2026-02-20T12:15:00.000Z"  # FrozenClock start + 900 s default lease
    assert body["data"] == {k: body[k] for k in ("issue", "prompt", "meta", "claim")}
    fetched = client.get(f"/api/issues/{top['id']}").json["data"]
    assert fetched["status"] == "in_progress" and fetched["agentSessionId"] == claim["sessionId"]
    assert client.get("/api/issues", params={"status": "in_progress"}).json["total"] == 1
    sessions = client.get(f"/api/issues/{top['id']}/sessions").json
    assert sessions["total"] == 1
    [s] = sessions["data"]
    assert s["id"] == claim["sessionId"] and s["status"] == "active" and s["agentName"] == "bootstrap"
    assert "tokenHash" not in s and claim["token"] not in str(store.r.hgetall(store.keys.session(s["id"])))
    assert audit(store) == []


def test_consecutive_claims_hand_out_each_issue_once_then_204(client, store, no_prompts):
    ids = {_issue(client, title=f"i{n}", priority=n % 5)["id"] for n in range(6)}
    got = [client.get("/api/dispatch/next").json["issue"]["id"] for _ in range(6)]
    assert sorted(got) == sorted(ids)
    assert client.get("/api/dispatch/next").status_code == 204
    assert audit(store) == []


def test_a_claim_moves_the_project_status_counts(client, store, no_prompts):
    project = client.post("/api/projects", json={"name": "P"}).json["data"]
    _issue(client, projectId=project["id"])
    client.get("/api/dispatch/next")
    counts = client.get(f"/api/projects/{project['id']}").json["data"]["issueCounts"]
    assert counts == {"in_progress": 1}


def test_the_project_filter_only_dispatches_that_projects_issues(client, store, no_prompts):
    a = client.post("/api/projects", json={"name": "A"}).json["data"]
    b = client.post("/api/projects", json={"name": "B"}).json["data"]
    _issue(client, title="a-low", projectId=a["id"], priority=4)
    top_b = _issue(client, title="b-top", projectId=b["id"], priority=1)
    loose = _issue(client, title="no project", priority=1, type="signal")
    r = client.get("/api/dispatch/next", params={"projectId": a["id"]})
    assert r.json["issue"]["title"] == "a-low"
    assert client.get("/api/dispatch/next", params={"projectId": a["id"]}).status_code == 204
    assert client.get("/api/dispatch/next", params={"projectId": "nope"}).status_code == 204
    # Without a filter the global best comes first, and project sets stay consistent with it.
    assert client.get("/api/dispatch/next").json["issue"]["id"] == loose["id"]
    assert client.get("/api/dispatch/next").json["issue"]["id"] == top_b["id"]
    assert client.get("/api/dispatch/next", params={"projectId": b["id"]}).status_code == 204
    assert audit(store) == []


def test_moving_an_issue_to_another_project_moves_it_between_project_queues(client, store):
    a = client.post("/api/projects", json={"name": "A"}).json["data"]
    b = client.post("/api/projects", json={"name": "B"}).json["data"]
    issue = _issue(client, projectId=a["id"])
    client.patch(f"/api/issues/{issue['id']}", json={"projectId": b["id"]})
    assert client.get("/api/dispatch/queue", params={"projectId": a["id"]}).json["total"] == 0
    assert client.get("/api/dispatch/queue", params={"projectId": b["id"]}).json["total"] == 1
    assert audit(store) == []


def test_the_queue_is_globally_ordered_across_pages_with_an_exact_total(client, store):
    for n in range(30):
        _issue(client, title=f"i{n}", priority=n % 5, type=("signal", "task", "plan")[n % 3])
    _issue(client, status="backlog")
    pages = [client.get("/api/dispatch/queue", params={"limit": 7, "offset": o}).json for o in range(0, 35, 7)]
    assert {p["total"] for p in pages} == {30}
    assert [len(p["data"]) for p in pages] == [7, 7, 7, 7, 2]
    scores = [i["score"] for p in pages for i in p["data"]]
    assert scores == sorted(scores, reverse=True)
    assert len({i["issue"]["id"] for p in pages for i in p["data"]}) == 30
    item = pages[0]["data"][0]
    assert set(item) == {"issue", "score", "breakdown"}
    assert set(item["breakdown"]) == {"priorityWeight", "goalBonus", "ageBonus", "typeBonus"}
    assert "createdAt" in item["issue"] and "agentSummary" in item["issue"]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "201"}, {"offset": "-1"}, {"limit": "x"}])
def test_bad_queue_pagination_is_a_400_that_writes_nothing(client, store, params):
    _issue(client)
    before = keys_of(store)
    r = client.get("/api/dispatch/queue", params=params)
    assert r.status_code == 400 and r.json["error"]
    assert keys_of(store) == before


def test_the_queue_does_not_claim(client, store):
    issue = _issue(client)
    client.get("/api/dispatch/queue")
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["status"] == "todo"


def test_sessions_of_an_unknown_issue_are_404(client):
    r = client.get("/api/issues/nope/sessions")
    assert r.status_code == 404 and r.json == {"error": "Issue not found"}


def test_an_unknown_session_is_404_on_get_heartbeat_and_release(client):
    assert client.get("/api/dispatch/claims/nope").status_code == 404
    assert client.post("/api/dispatch/claims/nope/heartbeat").status_code == 404
    assert client.post("/api/dispatch/claims/nope/release", json={}).status_code == 404


def test_the_openapi_document_describes_dispatch_and_the_agent_session(client):
    spec = client.get("/api/openapi.json").json
    assert "/api/dispatch/next" in spec["paths"] and "/api/dispatch/claims/{session_id}/heartbeat" in spec["paths"]
    assert set(spec["components"]["schemas"]["AgentSession"]["properties"]) >= {
        "id", "issueId", "agentName", "status", "claimedAt", "expiresAt", "endedAt", "summary", "reason", "versionId"}
