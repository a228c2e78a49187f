"""Contract 1.3 (relations) and 1.4 (comments) over the API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import keys_of

RELATION_KEYS = {"id", "type", "issueId", "relatedIssueId", "createdAt"}
COMMENT_KEYS = {"id", "body", "issueId", "authorName", "authorType", "parentId", "createdAt", "keyName"}


def mk(client: Any, **fields: Any) -> str:
    r = client.post("/api/issues", json={"title": "An issue", "type": "task", **fields})
    assert r.status_code == 201, r.text
    return str(r.json["data"]["id"])


def comment(client: Any, issue_id: str, body: str = "hello", **fields: Any) -> Any:
    return client.post(f"/api/issues/{issue_id}/comments",
                       json={"body": body, "authorName": "Ann", "authorType": "human", **fields})


# ----------------------------------------------------------------------------- relations
@pytest.mark.parametrize("rel_type", ["blocks", "blocked_by", "related", "duplicate"])
def test_a_relation_is_created_with_201_and_the_wire_fields(client, rel_type):
    a, b = mk(client), mk(client)
    r = client.post(f"/api/issues/{a}/relations", json={"type": rel_type, "relatedIssueId": b})
    assert r.status_code == 201 and set(r.json) == {"data"}
    rel = r.json["data"]
    assert set(rel) == RELATION_KEYS
    assert (rel["type"], rel["issueId"], rel["relatedIssueId"]) == (rel_type, a, b)
    assert rel["createdAt"] == "2026-02-20T12:00:00.000Z"


def test_no_inverse_relation_is_created_and_duplicates_are_allowed(client):
    a, b = mk(client), mk(client)
    r1 = client.post(f"/api/issues/{a}/relations", json={"type": "blocks", "relatedIssueId": b}).json["data"]
    r2 = client.post(f"/api/issues/{a}/relations", json={"type": "blocks", "relatedIssueId": b}).json["data"]
    assert r1["id"] != r2["id"]
    assert [r["id"] for r in client.get(f"/api/issues/{a}").json["data"]["relations"]] == [r1["id"], r2["id"]]
    assert client.get(f"/api/issues/{b}").json["data"]["relations"] == []


def test_relation_checks_run_in_the_reference_order_and_write_nothing(client, store):
    a, b = mk(client), mk(client)
    gone = mk(client)
    client.delete(f"/api/issues/{gone}")
    before = keys_of(store)
    cases = [
        # a missing source wins over a missing target and over a self relation
        ("nosuch", "nosuch2", 404, "Issue not found"),
        ("nosuch", "nosuch", 404, "Issue not found"),
        (a, "nosuch", 422, "Related issue not found"),
        (a, a, 422, "Cannot create a relation to the same issue"),
        ("x:relations", a, 404, "Issue not found"),
    ]
    for src, dst, status, error in cases:
        r = client.post(f"/api/issues/{src}/relations", json={"type": "related", "relatedIssueId": dst})
        assert (r.status_code, r.json) == (status, {"error": error}), (src, dst)
    assert keys_of(store) == before
    # soft-deleted issues still count as existing, on either side
    assert client.post(f"/api/issues/{gone}/relations", json={"type": "related", "relatedIssueId": b}).status_code == 201
    assert client.post(f"/api/issues/{a}/relations", json={"type": "related", "relatedIssueId": gone}).status_code == 201


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"relatedIssueId": "x"}, "type", "is required"),
    ({"type": "parent", "relatedIssueId": "x"}, "type", "must be one of: blocks, blocked_by, related, duplicate"),
    ({"type": "blocks"}, "relatedIssueId", "is required"),
    ({"type": "blocks", "relatedIssueId": ""}, "relatedIssueId", "must not be empty"),
    ({"type": "blocks", "relatedIssueId": 5}, "relatedIssueId", "must be a string"),
])
def test_an_invalid_relation_body_is_exactly_400(client, store, body, field, message):
    a = mk(client)
    before = keys_of(store)
    r = client.post(f"/api/issues/{a}/relations", json=body)
    assert r.status_code == 400
    assert r.json["details"][field] == [message]
    assert keys_of(store) == before


def test_deleting_a_relation_is_a_hard_delete_then_404(client, store):
    a, b = mk(client), mk(client)
    rel = client.post(f"/api/issues/{a}/relations", json={"type": "blocks", "relatedIssueId": b}).json["data"]
    r = client.delete(f"/api/relations/{rel['id']}")
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/api/issues/{a}").json["data"]["relations"] == []
    assert store.relations.get(rel["id"]) is None
    for rid in (rel["id"], "nosuch", "x:y"):
        r = client.delete(f"/api/relations/{rid}")
        assert (r.status_code, r.json) == (404, {"error": "Relation not found"})


# ----------------------------------------------------------------------------- comments
def test_a_comment_is_created_with_201_and_the_wire_fields(client):
    issue = mk(client)
    r = comment(client, issue, "Looks good", authorType="agent", bogus=1)
    assert r.status_code == 201 and set(r.json) == {"data"}
    c = r.json["data"]
    assert set(c) == COMMENT_KEYS
    assert (c["body"], c["issueId"], c["authorName"], c["authorType"], c["parentId"]) == \
        ("Looks good", issue, "Ann", "agent", None)
    assert c["createdAt"] == "2026-02-20T12:00:00.000Z"


def test_a_comment_records_the_name_of_the_api_key_that_made_it(client):
    issue = mk(client)
    assert comment(client, issue).json["data"]["keyName"] == "bootstrap"
    secret = client.post("/api/keys", json={"name": "agent-7"}).json["data"]["key"]
    r = client.post(f"/api/issues/{issue}/comments", headers={"Authorization": f"Bearer {secret}"}, auth=False,
                    json={"body": "b", "authorName": "Bot", "authorType": "agent"})
    assert r.status_code == 201 and r.json["data"]["keyName"] == "agent-7"
    listed = client.get(f"/api/issues/{issue}/comments").json["data"]
    assert [c["keyName"] for c in listed] == ["bootstrap", "agent-7"]


def test_comments_are_listed_threaded_in_creation_order_without_a_total(client, clock):
    issue = mk(client)
    first = comment(client, issue, "first").json["data"]
    clock.advance(1)
    second = comment(client, issue, "second").json["data"]
    clock.advance(1)
    reply1 = comment(client, issue, "reply 1", parentId=first["id"]).json["data"]
    clock.advance(1)
    reply2 = comment(client, issue, "reply 2", parentId=first["id"]).json["data"]
    clock.advance(1)
    nested = comment(client, issue, "reply to reply", parentId=reply1["id"])
    assert nested.status_code == 201
    r = client.get(f"/api/issues/{issue}/comments")
    assert r.status_code == 200 and set(r.json) == {"data"}
    data = r.json["data"]
    assert [c["id"] for c in data] == [first["id"], second["id"]]
    assert data[0]["replies"] == [reply1, reply2]
    assert data[1]["replies"] == []
    assert set(data[0]) == COMMENT_KEYS | {"replies"}
    # a reply to a reply is dropped from the output (one level materialized)
    assert nested.json["data"]["id"] not in str(data)


def test_comments_of_other_issues_are_not_listed(client):
    a, b = mk(client), mk(client)
    comment(client, a, "on a")
    assert client.get(f"/api/issues/{b}/comments").json == {"data": []}


def test_a_parent_comment_may_belong_to_another_issue(client):
    a, b = mk(client), mk(client)
    parent = comment(client, a).json["data"]
    r = comment(client, b, "cross", parentId=parent["id"])
    assert r.status_code == 201 and r.json["data"]["parentId"] == parent["id"]


def test_soft_deleted_issues_still_accept_and_list_comments(client):
    issue = mk(client)
    client.delete(f"/api/issues/{issue}")
    assert comment(client, issue).status_code == 201
    assert len(client.get(f"/api/issues/{issue}/comments").json["data"]) == 1


def test_comment_errors_write_nothing(client, store):
    issue = mk(client)
    before = keys_of(store)
    r = comment(client, "nosuch")
    assert (r.status_code, r.json) == (404, {"error": "Issue not found"})
    r = client.get("/api/issues/nosuch/comments")
    assert (r.status_code, r.json) == (404, {"error": "Issue not found"})
    for parent in ("nosuch", "x:y"):
        r = comment(client, issue, parentId=parent)
        assert (r.status_code, r.json) == (422, {"error": "Parent comment not found"})
    assert keys_of(store) == before


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"authorName": "a", "authorType": "human"}, "body", "is required"),
    ({"body": "", "authorName": "a", "authorType": "human"}, "body", "must not be empty"),
    ({"body": "b", "authorType": "human"}, "authorName", "is required"),
    ({"body": "b", "authorName": "", "authorType": "human"}, "authorName", "must not be empty"),
    ({"body": "b", "authorName": "a"}, "authorType", "is required"),
    ({"body": "b", "authorName": "a", "authorType": "robot"}, "authorType", "must be one of: human, agent"),
    ({"body": ["b"], "authorName": "a", "authorType": "human"}, "body", "must be a string"),
])
def test_an_invalid_comment_body_is_exactly_400(client, store, body, field, message):
    issue = mk(client)
    before = keys_of(store)
    r = client.post(f"/api/issues/{issue}/comments", json=body)
    assert r.status_code == 400
    assert r.json["details"][field] == [message]
    assert keys_of(store) == before


def test_an_issue_detail_lists_the_relations_other_issues_hold_towards_it(client):
    a = client.post("/api/issues", json={"title": "a", "type": "task"}).json["data"]
    b = client.post("/api/issues", json={"title": "b", "type": "task"}).json["data"]
    rel = client.post(f"/api/issues/{a['id']}/relations", json={"type": "blocks", "relatedIssueId": b["id"]}).json["data"]
    detail = client.get(f"/api/issues/{b['id']}").json["data"]
    assert [r["id"] for r in detail["incomingRelations"]] == [rel["id"]] and detail["relations"] == []
    assert client.get(f"/api/issues/{a['id']}").json["data"]["incomingRelations"] == []
    assert client.delete(f"/api/relations/{rel['id']}").status_code == 204
    assert client.get(f"/api/issues/{b['id']}").json["data"]["incomingRelations"] == []
