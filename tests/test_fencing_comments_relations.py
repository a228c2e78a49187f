"""Claim-token fencing on comments and relations (issue 10.4): a stale ``X-Loop-Claim-Token``
is rejected exactly like on PATCH (409, same body) and writes nothing; the current token works;
no token behaves as before (unfenced)."""

from __future__ import annotations

from typing import Any

import pytest

from loop.dispatch.service import STALE_TOKEN
from tests.conftest import keys_of

LEASE = 900


@pytest.fixture
def render_prompts() -> bool:
    return False  # these tests claim without a prompt (dispatch renders none)


def _issue(client: Any, status: str = "todo") -> str:
    r = client.post("/api/issues", json={"title": "t", "type": "task", "status": status})
    assert r.status_code == 201, r.text
    return str(r.json["data"]["id"])


def _reclaimed(client: Any, store: Any, clock: Any) -> tuple[str, str, str]:
    """An issue claimed, expired and claimed again: (issue id, stale token, current token)."""
    issue = _issue(client)
    first = client.get("/api/dispatch/next").json["claim"]
    clock.advance(LEASE)
    store.dispatch.expire_due()
    second = client.get("/api/dispatch/next").json["claim"]
    assert second["sessionId"] != first["sessionId"]
    return issue, first["token"], second["token"]


def _snapshot(store: Any) -> tuple[set[str], dict[str, str]]:
    """Every key of the namespace, and the value of every string key (the row counter too)."""
    keys = keys_of(store)
    return keys, {k: store.r.get(k) for k in keys if store.r.type(k) == "string"}


def _comment(client: Any, issue: str, token: str | None) -> Any:
    headers = {"X-Loop-Claim-Token": token} if token else {}
    return client.post(f"/api/issues/{issue}/comments", headers=headers,
                       json={"body": "progress", "authorName": "agent-1", "authorType": "agent"})


def _relate(client: Any, issue: str, other: str, token: str | None) -> Any:
    headers = {"X-Loop-Claim-Token": token} if token else {}
    return client.post(f"/api/issues/{issue}/relations", headers=headers,
                       json={"type": "related", "relatedIssueId": other})


def _patch_error(client: Any, issue: str, token: str) -> tuple[int, Any]:
    r = client.patch(f"/api/issues/{issue}", json={"title": "x"}, headers={"X-Loop-Claim-Token": token})
    return r.status_code, r.json


def test_a_comment_with_a_stale_claim_token_is_rejected_like_a_patch_and_writes_nothing(client, store, clock):
    issue, stale, _ = _reclaimed(client, store, clock)
    before = _snapshot(store)
    r = _comment(client, issue, stale)
    assert (r.status_code, r.json) == (409, {"error": STALE_TOKEN})
    assert (r.status_code, r.json) == _patch_error(client, issue, stale)
    assert _snapshot(store) == before
    assert client.get(f"/api/issues/{issue}/comments").json["data"] == []


def test_a_comment_with_the_current_claim_token_or_no_token_is_written(client, store, clock):
    issue, _, current = _reclaimed(client, store, clock)
    assert _comment(client, issue, current).status_code == 201
    assert _comment(client, issue, None).status_code == 201
    assert len(client.get(f"/api/issues/{issue}/comments").json["data"]) == 2


def test_a_comment_with_an_expired_unswept_lease_token_is_rejected(client, store, clock):
    issue = _issue(client)
    token = client.get("/api/dispatch/next").json["claim"]["token"]
    clock.advance(LEASE + 1)
    r = _comment(client, issue, token)
    assert r.status_code == 409 and "expired" in r.json["error"]


def test_a_relation_created_with_a_stale_claim_token_is_rejected_like_a_patch_and_writes_nothing(
        client, store, clock):
    issue, stale, _ = _reclaimed(client, store, clock)
    other = _issue(client, status="backlog")
    before = _snapshot(store)
    r = _relate(client, issue, other, stale)
    assert (r.status_code, r.json) == (409, {"error": STALE_TOKEN})
    assert (r.status_code, r.json) == _patch_error(client, issue, stale)
    assert _snapshot(store) == before


def test_a_relation_created_with_the_current_claim_token_or_no_token_is_written(client, store, clock):
    issue, _, current = _reclaimed(client, store, clock)
    other = _issue(client, status="backlog")
    assert _relate(client, issue, other, current).status_code == 201
    assert _relate(client, issue, other, None).status_code == 201
    assert len(client.get(f"/api/issues/{issue}").json["data"]["relations"]) == 2


def test_deleting_a_relation_with_a_stale_claim_token_of_its_issue_is_rejected_and_keeps_it(
        client, store, clock):
    issue, stale, current = _reclaimed(client, store, clock)
    other = _issue(client, status="backlog")
    rel = _relate(client, issue, other, None).json["data"]["id"]
    before = _snapshot(store)
    r = client.delete(f"/api/relations/{rel}", headers={"X-Loop-Claim-Token": stale})
    assert (r.status_code, r.json) == (409, {"error": STALE_TOKEN})
    assert _snapshot(store) == before
    assert client.delete(f"/api/relations/{rel}", headers={"X-Loop-Claim-Token": current}).status_code == 204
    assert client.get(f"/api/issues/{issue}").json["data"]["relations"] == []


def test_deleting_a_relation_without_a_token_is_unfenced_and_a_missing_one_is_still_404(client, store, clock):
    issue, stale, _ = _reclaimed(client, store, clock)
    other = _issue(client, status="backlog")
    rel = _relate(client, issue, other, None).json["data"]["id"]
    assert client.delete(f"/api/relations/{rel}").status_code == 204
    r = client.delete(f"/api/relations/{rel}", headers={"X-Loop-Claim-Token": stale})
    assert (r.status_code, r.json) == (404, {"error": "Relation not found"})
