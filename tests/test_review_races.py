"""Races and drift found in review (issue 10.9): each test injects the concurrent write at the
exact point between a transaction's read and its MULTI (or builds the drifted state) and checks
that the write either retries and sees it or refuses."""

from __future__ import annotations

from typing import Any

import pytest

from loop.dispatch.sessions import NEEDS_REVIEW_COLOR, NEEDS_REVIEW_LABEL
from loop.store.base import IssueHook


@pytest.fixture
def render_prompts() -> bool:
    return False  # these tests claim without a prompt (dispatch renders none)


def _issue(client, **fields):
    r = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


class _Once(IssueHook):
    """An issue hook that runs ``action`` once, while the write is still watching (before MULTI)."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def prepare(self, pipe: Any, old: Any, new: Any, intent: Any) -> None:
        action, self.action = self.action, None
        if action is not None:
            action()


def test_a_label_attached_while_an_issue_is_being_deleted_leaves_no_trace_in_the_label_index(client, store):
    issue = _issue(client)
    label = client.post("/api/labels", json={"name": "bug", "color": "red"}).json["data"]
    hook = _Once(lambda: store.issues.attach_label(issue["id"], label["id"]))
    store.issue_hooks.append(hook)
    try:
        store.issues.delete(issue["id"])
    finally:
        store.issue_hooks.remove(hook)
    assert hook.action is None  # the attach did run in the middle of the delete
    assert store.r.zrange(store.keys.issue_index("label", label["id"]), 0, -1) == []
    assert client.get("/api/issues", params={"labelId": label["id"]}).json["total"] == 0


def test_ensure_brings_a_soft_deleted_label_back_instead_of_returning_it_deleted(store):
    first = store.labels.ensure(NEEDS_REVIEW_LABEL, NEEDS_REVIEW_COLOR)
    store.labels.delete(first["id"])
    again = store.labels.ensure(NEEDS_REVIEW_LABEL, NEEDS_REVIEW_COLOR)
    assert again["id"] == first["id"] and again["deletedAt"] is None
    assert store.labels.get(first["id"])["deletedAt"] is None
    assert [row["id"] for row in store.labels.list(10, 0)[0]] == [first["id"]]


def test_parking_after_the_review_label_was_deleted_attaches_a_live_label(client, store, settings, clock):
    label = store.labels.ensure(NEEDS_REVIEW_LABEL, NEEDS_REVIEW_COLOR)
    store.labels.delete(label["id"])
    issue = _issue(client)
    for _ in range(settings.max_lease_expiries):
        claim = client.get("/api/dispatch/next").json["claim"]
        r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release", json={"failed": True})
        assert r.status_code == 200, r.text
    detail = client.get(f"/api/issues/{issue['id']}").json["data"]
    assert detail["status"] == "backlog" and [lb["name"] for lb in detail["labels"]] == [NEEDS_REVIEW_LABEL]


def test_a_release_that_another_request_beat_to_it_is_a_409_not_a_200(client, store, monkeypatch):
    _issue(client)
    claim = client.get("/api/dispatch/next").json["claim"]
    sid, token = claim["sessionId"], claim["token"]
    authorize = store.dispatch._authorize
    raced: list[bool] = []

    def racing(session, agent, tok):
        authorize(session, agent, tok)
        if not raced:  # another request releases the same claim right after this one checked it
            raced.append(True)
            store.dispatch.release(sid, None, token, "the other request")

    monkeypatch.setattr(store.dispatch, "_authorize", racing)
    r = client.post(f"/api/dispatch/claims/{sid}/release", json={"reason": "this request"})
    assert raced and r.status_code == 409, r.text
    assert "not active" in r.json["error"]
    assert client.get(f"/api/dispatch/claims/{sid}").json["data"]["reason"] == "the other request"


def test_closing_a_drifted_session_keeps_the_newer_session_its_issue_names(client, store):
    issue = _issue(client)
    old = client.get("/api/dispatch/next").json["claim"]
    state = store.keys.dispatch_state(issue["id"])
    # Drift: the issue's dispatch state names a newer session while the old one is still active.
    store.r.hset(state, "session", "newer-session")
    assert store.dispatch._close_alone(old["sessionId"], "released", "x")
    assert client.get(f"/api/dispatch/claims/{old['sessionId']}").json["data"]["status"] == "released"
    assert store.r.hget(state, "session") == "newer-session"


def test_closing_a_drifted_session_that_its_issue_still_names_clears_the_name(client, store):
    issue = _issue(client)
    old = client.get("/api/dispatch/next").json["claim"]
    store.dispatch._close_alone(old["sessionId"], "released", "x")
    assert store.r.hget(store.keys.dispatch_state(issue["id"]), "session") is None


def test_idempotency_keys_are_scoped_to_the_query_string_too(client):
    body = {"title": "t", "type": "task"}
    a = client.post("/api/issues", json=body, params={"x": "1"}, headers={"Idempotency-Key": "k"})
    b = client.post("/api/issues", json=body, params={"x": "2"}, headers={"Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers and b.json["data"]["id"] != a.json["data"]["id"]
    c = client.post("/api/issues", json=body, params={"x": "1"}, headers={"Idempotency-Key": "k"})
    assert c.headers.get("Idempotent-Replayed") == "true" and c.json["data"]["id"] == a.json["data"]["id"]

