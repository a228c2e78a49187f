"""Blocking cycles (issue 10.12): a relation that would close a cycle of blocking relations is a
422 that writes nothing, however it is spelled, even when the other edge is being written at the
same moment; a graph too deep to search within the limit is refused too."""

from __future__ import annotations

from typing import Any

import pytest

from loop.dispatch import index
from loop.dispatch.audit import audit
from loop.errors import BusinessRuleError
from loop.store.relations import RelationHook
from tests.conftest import keys_of


def _issue(client, **fields):
    r = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def _relate(client, source, rel_type, target):
    return client.post(f"/api/issues/{source['id']}/relations",
                       json={"type": rel_type, "relatedIssueId": target["id"]})


@pytest.mark.parametrize("first", ["blocks", "blocked_by"])
@pytest.mark.parametrize("second", ["blocks", "blocked_by"])
def test_a_relation_closing_a_two_issue_cycle_is_a_422_that_writes_nothing(client, store, first, second):
    a, b = _issue(client), _issue(client)
    # "a blocks b", spelled either way
    assert (_relate(client, a, "blocks", b) if first == "blocks" else _relate(client, b, "blocked_by", a)).status_code == 201
    before = keys_of(store)
    r = _relate(client, b, "blocks", a) if second == "blocks" else _relate(client, a, "blocked_by", b)
    assert r.status_code == 422 and "cycle" in r.json["error"]
    assert keys_of(store) == before
    assert client.get("/api/dispatch/next").json["issue"]["id"] == a["id"]
    assert audit(store) == []


def test_a_longer_cycle_is_refused_and_non_blocking_relations_never_are(client, store):
    a, b, c = _issue(client), _issue(client), _issue(client)
    assert _relate(client, a, "blocks", b).status_code == 201
    assert _relate(client, b, "blocks", c).status_code == 201
    r = _relate(client, c, "blocks", a)
    assert r.status_code == 422 and "cycle" in r.json["error"]
    assert _relate(client, c, "related", a).status_code == 201
    assert _relate(client, c, "duplicate", a).status_code == 201
    # The same pair again in the same direction is no cycle.
    assert _relate(client, b, "blocked_by", a).status_code == 201
    assert audit(store) == []


def test_a_resolved_issue_in_the_loop_still_counts_because_reopening_it_would_strand_both(client, store):
    a, b = _issue(client, status="done"), _issue(client)
    assert _relate(client, a, "blocks", b).status_code == 201
    assert _relate(client, b, "blocks", a).status_code == 422


class _Once(RelationHook):
    """Runs ``action`` once, while the relation write is still watching (before its MULTI)."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def prepare(self, pipe: Any, relation: Any, added: bool) -> None:
        action, self.action = self.action, None
        if action is not None:
            action()


def test_two_relations_racing_to_close_a_cycle_cannot_both_win(store):
    a = store.issues.create({"title": "a", "type": "task", "status": "todo"})
    b = store.issues.create({"title": "b", "type": "task", "status": "todo"})
    hook = _Once(lambda: store.relations.create(b["id"], "blocks", a["id"]))
    store.relations.hooks.append(hook)
    try:
        with pytest.raises(BusinessRuleError, match="cycle"):
            store.relations.create(a["id"], "blocks", b["id"])
    finally:
        store.relations.hooks.remove(hook)
    assert hook.action is None  # the other edge was written in the middle of this write
    assert store.r.hgetall(store.keys.dispatch_blocking(a["id"])) == {}
    assert store.r.hgetall(store.keys.dispatch_blocking(b["id"])) == {a["id"]: "1"}
    assert audit(store) == []


def test_a_blocking_graph_too_large_to_search_is_refused_not_guessed(client, store, monkeypatch):
    monkeypatch.setattr(index, "CYCLE_CHECK_LIMIT", 3)
    chain = [_issue(client) for _ in range(6)]
    for x, y in zip(chain, chain[1:], strict=False):
        assert _relate(client, x, "blocks", y).status_code == 201
    before = keys_of(store)
    r = _relate(client, _issue(client), "blocks", chain[0])
    assert r.status_code == 422 and "too large" in r.json["error"]
    assert "3" in r.json["error"]
    assert {k for k in keys_of(store) - before if ":relation:" in k} == set()
    # A short chain is still checked exactly.
    assert _relate(client, chain[4], "blocks", chain[5]).status_code == 201
