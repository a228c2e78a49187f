"""Contract 1.2 (issues), 3.3 (hierarchy), 3.5 (soft delete), improvements 5, 8 and 12 over the API."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.conftest import keys_of

ISSUE_KEYS = {
    "id", "number", "title", "description", "type", "status", "priority", "parentId", "projectId",
    "signalSource", "signalPayload", "hypothesis", "agentSessionId", "agentSummary", "commits",
    "pullRequests", "completedAt", "createdAt", "updatedAt", "deletedAt", "notBefore", "outcome",
    "signalCount", "lastSignalAt", "signalRecent",  # signal grouping (issue 14)
}
HYPOTHESIS = {"statement": "Users churn at signup", "confidence": 0.7, "evidence": ["funnel drop"],
              "validationCriteria": "signup rate +10%"}


def mk(client: Any, **fields: Any) -> dict[str, Any]:
    body = {"title": "An issue", "type": "task", **fields}
    r = client.post("/api/issues", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json["data"])


def mk_label(client: Any, name: str) -> str:
    r = client.post("/api/labels", json={"name": name, "color": "#f00"})
    assert r.status_code == 201, r.text
    return str(r.json["data"]["id"])


def ids(resp: Any) -> list[str]:
    return [i["id"] for i in resp.json["data"]]


# ----------------------------------------------------------------------------- create
def test_creating_an_issue_returns_201_with_every_wire_field_and_the_defaults(client, clock):
    r = client.post("/api/issues", json={"title": "Fix login", "type": "task"})
    assert r.status_code == 201
    issue = r.json["data"]
    assert set(r.json) == {"data"}
    assert set(issue) == ISSUE_KEYS
    assert issue["status"] == "triage" and issue["priority"] == 0 and issue["number"] == 1
    for field in ("description", "parentId", "projectId", "signalSource", "signalPayload", "hypothesis",
                  "agentSessionId", "agentSummary", "commits", "pullRequests", "completedAt", "deletedAt"):
        assert issue[field] is None, field
    assert issue["createdAt"] == issue["updatedAt"] == "2026-02-20T12:00:00.000Z"
    assert len(issue["id"]) == 24 and issue["id"][0].isalpha() and issue["id"].isalnum()


def test_issue_numbers_increase_by_one_per_created_issue(client):
    assert [mk(client)["number"] for _ in range(3)] == [1, 2, 3]


def test_every_optional_create_field_is_stored_and_echoed(client):
    parent = mk(client)
    issue = mk(client, title="Hypothesis", type="hypothesis", description="why", status="todo", priority=2,
               parentId=parent["id"], projectId="proj-1", signalSource="sentry",
               signalPayload={"a": [1, {"b": None}]}, hypothesis={**HYPOTHESIS, "prediction": "p"})
    got = client.get(f"/api/issues/{issue['id']}").json["data"]
    for field, value in (("description", "why"), ("status", "todo"), ("priority", 2), ("parentId", parent["id"]),
                         ("projectId", "proj-1"), ("signalSource", "sentry"),
                         ("signalPayload", {"a": [1, {"b": None}]}),
                         ("hypothesis", {**HYPOTHESIS, "prediction": "p"})):
        assert issue[field] == value and got[field] == value, field


def test_agent_result_fields_and_unknown_keys_are_silently_dropped_on_create(client):
    issue = mk(client, agentSummary="done", agentSessionId="s", commits=[], completedAt="2020-01-01T00:00:00Z",
               pullRequests=[], bogus=1)
    assert issue["agentSummary"] is None and issue["agentSessionId"] is None and issue["commits"] is None
    assert issue["pullRequests"] is None and issue["completedAt"] is None and "bogus" not in issue


def test_creating_an_issue_as_done_stamps_completed_at(client):
    assert mk(client, status="done")["completedAt"] == "2026-02-20T12:00:00.000Z"


def test_label_ids_on_create_link_labels_shown_in_the_detail(client):
    a, b = mk_label(client, "bug"), mk_label(client, "ui")
    issue = mk(client, labelIds=[a, b, a])
    labels = client.get(f"/api/issues/{issue['id']}").json["data"]["labels"]
    assert sorted(lb["name"] for lb in labels) == ["bug", "ui"]
    assert all(set(lb) == {"id", "name", "color"} for lb in labels)


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"type": "task"}, "title", "is required"),
    ({"title": "", "type": "task"}, "title", "must not be empty"),
    ({"title": "x" * 501, "type": "task"}, "title", "must be at most 500 characters"),
    ({"title": 5, "type": "task"}, "title", "must be a string"),
    ({"title": "t"}, "type", "is required"),
    ({"title": "t", "type": "epic"}, "type", "must be one of: signal, hypothesis, plan, task, monitor"),
    ({"title": "t", "type": "task", "status": "open"}, "status", "must be one of"),
    ({"title": "t", "type": "task", "priority": 5}, "priority", "must be at most 4"),
    ({"title": "t", "type": "task", "priority": -1}, "priority", "must be at least 0"),
    ({"title": "t", "type": "task", "priority": "1"}, "priority", "must be an integer"),
    ({"title": "t", "type": "task", "priority": 1.5}, "priority", "must be an integer"),
    ({"title": "t", "type": "task", "priority": True}, "priority", "must be an integer"),
    ({"title": "t", "type": "task", "description": None}, "description", "must not be null"),
    ({"title": "t", "type": "task", "signalPayload": [1]}, "signalPayload", "must be a JSON object"),
    ({"title": "t", "type": "task", "labelIds": "a"}, "labelIds", "must be an array"),
    ({"title": "t", "type": "task", "labelIds": [1]}, "labelIds.0", "must be a string"),
    ({"title": "t", "type": "task", "hypothesis": {**HYPOTHESIS, "confidence": 2}}, "hypothesis.confidence",
     "must be at most 1"),
    ({"title": "t", "type": "task", "hypothesis": {"statement": "s"}}, "hypothesis.confidence", "is required"),
    ({"title": "t", "type": "task", "hypothesis": {**HYPOTHESIS, "evidence": "e"}}, "hypothesis.evidence",
     "must be an array"),
])
def test_an_invalid_create_body_is_a_400_naming_the_field_and_writes_nothing(client, store, body, field, message):
    before = keys_of(store)
    r = client.post("/api/issues", json=body)
    assert r.status_code == 400
    assert r.json["error"].startswith(f"Invalid request: {field} ")
    assert any(message in m for m in r.json["details"][field])
    assert keys_of(store) == before


@pytest.mark.parametrize(("raw", "ctype", "error"), [
    (b"{nope", "application/json", "Malformed JSON in request body"),
    (b'{"title": "t",}', "application/json", "Malformed JSON in request body"),
    (b"\xff\xfe", "application/json", "Malformed JSON in request body"),
    (b"[1, 2]", "application/json", "Request body must be a JSON object."),
    (b'"text"', "application/json", "Request body must be a JSON object."),
    (b'{"title": "t", "type": "task"}', "text/plain", "Invalid request: title is required (and 1 more problem)."),
    (b"", "application/json", "Invalid request: title is required (and 1 more problem)."),
])
def test_a_body_that_is_not_a_json_object_is_a_400_and_writes_nothing(client, store, raw, ctype, error):
    before = keys_of(store)
    r = client.post("/api/issues", body=raw, headers={"Content-Type": ctype})
    assert r.status_code == 400
    assert r.json["error"] == error
    assert keys_of(store) == before


def test_a_missing_parent_is_a_422_and_writes_nothing(client, store):
    before = keys_of(store)
    r = client.post("/api/issues", json={"title": "t", "type": "task", "parentId": "nosuchissue"})
    assert (r.status_code, r.json) == (422, {"error": "Parent issue not found"})
    assert keys_of(store) == before


def test_a_soft_deleted_parent_counts_as_missing(client):
    parent = mk(client)
    assert client.delete(f"/api/issues/{parent['id']}").status_code == 204
    r = client.post("/api/issues", json={"title": "t", "type": "task", "parentId": parent["id"]})
    assert (r.status_code, r.json["error"]) == (422, "Parent issue not found")


def test_creating_a_grandchild_is_a_422_and_writes_nothing(client, store):
    root = mk(client)
    child = mk(client, parentId=root["id"])
    before = keys_of(store)
    r = client.post("/api/issues", json={"title": "t", "type": "task", "parentId": child["id"]})
    assert r.status_code == 422
    assert r.json == {"error": "Cannot create a child of an issue that already has a parent (1-level hierarchy limit)"}
    assert keys_of(store) == before


def test_an_unknown_label_id_on_create_is_a_422_and_writes_nothing(client, store):
    before = keys_of(store)
    r = client.post("/api/issues", json={"title": "t", "type": "task", "labelIds": ["nolabel"]})
    assert (r.status_code, r.json) == (422, {"error": "Label not found: nolabel"})
    assert keys_of(store) == before


# ----------------------------------------------------------------------------- list
def test_the_list_is_ordered_by_creation_and_enveloped_with_an_exact_total(client, clock):
    made = []
    for _ in range(5):
        made.append(mk(client)["id"])
        clock.advance(1)
    r = client.get("/api/issues")
    assert r.status_code == 200 and set(r.json) == {"data", "total"}
    assert ids(r) == made and r.json["total"] == 5
    assert all(set(i) == ISSUE_KEYS for i in r.json["data"])
    page = client.get("/api/issues?limit=2&offset=1")
    assert ids(page) == made[1:3] and page.json["total"] == 5
    assert client.get("/api/issues?offset=10").json == {"data": [], "total": 5}
    assert client.get("/api/issues?offset=1000000000&status=todo,done").json == {"data": [], "total": 0}


def test_the_default_page_is_50_issues(client, store):
    for _ in range(55):
        store.issues.create({"title": "t", "type": "task"})
    r = client.get("/api/issues")
    assert len(r.json["data"]) == 50 and r.json["total"] == 55
    assert len(client.get("/api/issues?limit=200").json["data"]) == 55


@pytest.mark.parametrize(("query", "field", "message"), [
    ("limit=0", "limit", "must be at least 1"),
    ("limit=201", "limit", "must be at most 200"),
    ("limit=abc", "limit", "must be an integer"),
    ("limit=1.5", "limit", "must be an integer"),
    ("offset=-1", "offset", "must be at least 0"),
    ("offset=x", "offset", "must be an integer"),
    ("offset=99999999999999999999", "offset", "must be at most 1000000000"),
    ("priority=5", "priority", "must be at most 4"),
    ("priority=high", "priority", "must be an integer"),
    ("status=todo,bogus", "status", "unknown value 'bogus'"),
    ("type=epic", "type", "unknown value 'epic'"),
    ("status=,", "status", "must name at least one value"),
])
def test_bad_list_query_values_are_a_400_naming_the_parameter(client, query, field, message):
    r = client.get(f"/api/issues?{query}")
    assert r.status_code == 400
    assert r.json["error"].startswith(f"Invalid request: {field} ")
    assert any(message in m for m in r.json["details"][field])


def test_status_and_type_filters_take_comma_lists(client):
    a = mk(client, status="todo", type="task")
    b = mk(client, status="backlog", type="plan")
    c = mk(client, status="done", type="task")
    mk(client, status="triage", type="signal")
    assert ids(client.get("/api/issues?status=todo")) == [a["id"]]
    r = client.get("/api/issues?status=todo,backlog,done")
    assert ids(r) == [a["id"], b["id"], c["id"]] and r.json["total"] == 3
    assert ids(client.get("/api/issues?type=task")) == [a["id"], c["id"]]
    assert ids(client.get("/api/issues?type=task,plan&status=backlog,done")) == [b["id"], c["id"]]
    assert client.get("/api/issues?status=canceled").json == {"data": [], "total": 0}


def test_project_priority_parent_and_label_filters_match_exactly_and_combine(client):
    label = mk_label(client, "bug")
    root = mk(client, projectId="p1")
    a = mk(client, projectId="p1", priority=1, parentId=root["id"], labelIds=[label], status="todo")
    b = mk(client, projectId="p1", priority=2, parentId=root["id"], status="todo")
    c = mk(client, projectId="p2", priority=1, labelIds=[label], status="backlog")
    assert ids(client.get("/api/issues?projectId=p1")) == [root["id"], a["id"], b["id"]]
    assert ids(client.get("/api/issues?priority=1")) == [a["id"], c["id"]]
    assert ids(client.get("/api/issues?priority=0")) == [root["id"]]
    assert ids(client.get(f"/api/issues?parentId={root['id']}")) == [a["id"], b["id"]]
    assert ids(client.get(f"/api/issues?labelId={label}")) == [a["id"], c["id"]]
    r = client.get(f"/api/issues?projectId=p1&labelId={label}&priority=1&status=todo,done&type=task")
    assert ids(r) == [a["id"]] and r.json["total"] == 1
    r = client.get(f"/api/issues?labelId={label}&status=todo,backlog&limit=1&offset=1")
    assert ids(r) == [c["id"]] and r.json["total"] == 2
    assert client.get("/api/issues?projectId=p3").json == {"data": [], "total": 0}


def test_combined_filters_leave_no_temporary_keys_behind(client, store):
    mk(client, status="todo")
    before = keys_of(store)
    assert client.get("/api/issues?status=todo,backlog&type=task").json["total"] == 1
    assert keys_of(store) == before


def test_list_filters_follow_updates_and_deletes(client):
    a = mk(client, status="todo", projectId="p1", priority=1)
    client.patch(f"/api/issues/{a['id']}", json={"status": "done", "projectId": "p2", "priority": 3})
    assert client.get("/api/issues?status=todo").json["total"] == 0
    assert ids(client.get("/api/issues?status=done&projectId=p2&priority=3")) == [a["id"]]
    assert client.get("/api/issues?projectId=p1").json["total"] == 0
    client.delete(f"/api/issues/{a['id']}")
    assert client.get("/api/issues?status=done").json == {"data": [], "total": 0}
    assert client.get("/api/issues").json == {"data": [], "total": 0}


# ----------------------------------------------------------------------------- detail
def test_the_detail_has_parent_children_labels_and_only_outgoing_relations(client):
    root = mk(client)
    kids = [mk(client, parentId=root["id"]) for _ in range(2)]
    other = mk(client)
    label = mk_label(client, "bug")
    client.post(f"/api/issues/{root['id']}/labels", json={"labelId": label})
    out = client.post(f"/api/issues/{root['id']}/relations", json={"type": "blocks", "relatedIssueId": other["id"]})
    back = client.post(f"/api/issues/{other['id']}/relations", json={"type": "related", "relatedIssueId": root["id"]})
    d = client.get(f"/api/issues/{root['id']}").json["data"]
    assert set(d) == ISSUE_KEYS | {"parent", "children", "childrenTotal", "labels", "relations", "incomingRelations"}
    assert d["incomingRelations"] == [back.json["data"]]  # an addition: `relations` stays outgoing only
    assert d["parent"] is None
    assert sorted(c["id"] for c in d["children"]) == sorted(k["id"] for k in kids)
    assert all(set(c) == ISSUE_KEYS for c in d["children"])
    assert d["labels"] == [{"id": label, "name": "bug", "color": "#f00"}]
    assert d["relations"] == [out.json["data"]]
    child = client.get(f"/api/issues/{kids[0]['id']}").json["data"]
    assert child["parent"] == root and child["children"] == []


def test_the_detail_lists_the_fifty_most_recent_children_in_creation_order_and_counts_them_all(
        client, store):
    root = mk(client)
    kids = [store.issues.create({"title": f"kid {n}", "type": "task", "parentId": root["id"]}) for n in range(60)]
    store.issues.delete(kids[-1]["id"])
    d = client.get(f"/api/issues/{root['id']}").json["data"]
    assert [c["id"] for c in d["children"]] == [k["id"] for k in kids[9:59]]
    assert d["childrenTotal"] == 59


def test_the_detail_hides_deleted_parent_children_and_labels(client):
    root = mk(client)
    child = mk(client, parentId=root["id"])
    gone = mk(client, parentId=root["id"])
    label = mk_label(client, "bug")
    client.post(f"/api/issues/{child['id']}/labels", json={"labelId": label})
    client.delete(f"/api/issues/{gone['id']}")
    assert [c["id"] for c in client.get(f"/api/issues/{root['id']}").json["data"]["children"]] == [child["id"]]
    client.delete(f"/api/labels/{label}")
    client.delete(f"/api/issues/{root['id']}")
    d = client.get(f"/api/issues/{child['id']}").json["data"]
    assert d["parent"] is None and d["parentId"] == root["id"] and d["labels"] == []


@pytest.mark.parametrize("issue_id", ["nosuchissue", "x:labels", "{x}", "a%20b"])
def test_an_unknown_issue_id_is_a_404_on_get_patch_and_delete(client, store, issue_id):
    before = keys_of(store)
    for method, kw in (("GET", {}), ("PATCH", {"json": {"title": "x"}}), ("DELETE", {})):
        r = client.request(method, f"/api/issues/{issue_id}", **kw)
        assert (r.status_code, r.json) == (404, {"error": "Issue not found"}), method
    assert keys_of(store) == before


def test_ids_that_name_other_keys_of_an_existing_issue_are_404s_not_500s(client, store):
    issue = mk(client)
    client.post(f"/api/issues/{issue['id']}/comments", json={"body": "b", "authorName": "a", "authorType": "human"})
    label = mk_label(client, "x")
    client.post(f"/api/issues/{issue['id']}/labels", json={"labelId": label})
    before = keys_of(store)
    for suffix in (":comments", ":labels", ":relations"):
        for method, kw in (("GET", {}), ("PATCH", {"json": {"title": "x"}}), ("DELETE", {})):
            r = client.request(method, f"/api/issues/{issue['id']}{suffix}", **kw)
            assert r.status_code == 404, (suffix, method, r.text)
        assert client.get(f"/api/issues/{issue['id']}{suffix}/comments").status_code == 404
    assert keys_of(store) == before


# ----------------------------------------------------------------------------- patch
def test_patch_updates_the_given_fields_and_bumps_updated_at(client, clock):
    issue = mk(client)
    clock.advance(60)
    r = client.patch(f"/api/issues/{issue['id']}", json={
        "title": "New", "description": "d", "type": "plan", "status": "todo", "priority": 4,
        "projectId": "p", "signalSource": "s", "signalPayload": {"k": 1}, "hypothesis": HYPOTHESIS})
    assert r.status_code == 200 and set(r.json) == {"data"}
    got = r.json["data"]
    assert set(got) == ISSUE_KEYS
    assert (got["title"], got["description"], got["type"], got["status"], got["priority"]) == \
        ("New", "d", "plan", "todo", 4)
    assert (got["projectId"], got["signalSource"], got["signalPayload"], got["hypothesis"]) == \
        ("p", "s", {"k": 1}, HYPOTHESIS)
    assert got["updatedAt"] == "2026-02-20T12:01:00.000Z" and got["createdAt"] == issue["createdAt"]
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["title"] == "New"


def test_patch_clears_nullable_fields_with_null(client):
    issue = mk(client, projectId="p", hypothesis=HYPOTHESIS)
    got = client.patch(f"/api/issues/{issue['id']}", json={"projectId": None, "hypothesis": None}).json["data"]
    assert got["projectId"] is None and got["hypothesis"] is None
    assert client.get("/api/issues?projectId=p").json["total"] == 0


def test_patch_stores_agent_results(client):
    issue = mk(client, status="in_progress")
    commits = [{"sha": "abc", "message": "fix", "url": "u", "author": "me", "timestamp": "2026-01-01T00:00:00Z"}]
    prs = [{"number": 7, "title": "Fix", "url": "u", "state": "open", "mergedAt": None}]
    r = client.patch(f"/api/issues/{issue['id']}", json={
        "agentSummary": "Did it", "agentSessionId": "sess-1", "commits": commits, "pullRequests": prs})
    assert r.status_code == 200
    got = client.get(f"/api/issues/{issue['id']}").json["data"]
    assert (got["agentSummary"], got["agentSessionId"], got["commits"], got["pullRequests"]) == \
        ("Did it", "sess-1", commits, prs)


def test_completed_at_is_set_on_done_kept_while_done_and_cleared_on_reopen(client, clock):
    issue = mk(client, status="in_progress")
    clock.advance(10)
    done = client.patch(f"/api/issues/{issue['id']}", json={"status": "done", "agentSummary": "ok"}).json["data"]
    assert done["completedAt"] == "2026-02-20T12:00:10.000Z"
    clock.advance(10)
    again = client.patch(f"/api/issues/{issue['id']}", json={"title": "still done"}).json["data"]
    assert again["completedAt"] == done["completedAt"]
    reopened = client.patch(f"/api/issues/{issue['id']}", json={"status": "todo"}).json["data"]
    assert reopened["completedAt"] is None


def test_completed_at_and_label_ids_in_a_patch_are_ignored(client):
    issue = mk(client)
    label = mk_label(client, "bug")
    r = client.patch(f"/api/issues/{issue['id']}", json={"completedAt": "2020-01-01T00:00:00.000Z",
                                                         "labelIds": [label], "title": "t2"})
    assert r.status_code == 200 and r.json["data"]["completedAt"] is None
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["labels"] == []


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"title": ""}, "title", "must not be empty"),
    ({"description": None}, "description", "must not be null"),
    ({"status": "open"}, "status", "must be one of"),
    ({"priority": 9}, "priority", "must be at most 4"),
    ({"title": None}, "title", "must not be null"),
    ({"commits": [{"sha": "a"}]}, "commits.0.message", "is required"),
    ({"pullRequests": [{"number": "7", "title": "x"}]}, "pullRequests.0.number", "must be an integer"),
    ({"agentSummary": 3}, "agentSummary", "must be a string"),
])
def test_an_invalid_patch_is_a_400_and_changes_nothing(client, store, body, field, message):
    issue = mk(client)
    before = {k: store.r.dump(k) for k in keys_of(store)}
    r = client.patch(f"/api/issues/{issue['id']}", json=body)
    assert r.status_code == 400
    assert any(message in m for m in r.json["details"][field])
    assert {k: store.r.dump(k) for k in keys_of(store)} == before


@pytest.mark.parametrize("body", [{}, {"bogus": 1}, {"completedAt": "2020-01-01T00:00:00Z"}])
def test_an_empty_patch_is_a_400(client, store, body):
    issue = mk(client)
    before = {k: store.r.dump(k) for k in keys_of(store)}
    r = client.patch(f"/api/issues/{issue['id']}", json=body)
    assert r.status_code == 400
    assert r.json["error"].startswith("Request body must contain at least one field to update")
    assert r.json["details"] == {"body": ["must contain at least one updatable field"]}
    assert {k: store.r.dump(k) for k in keys_of(store)} == before


def test_patch_enforces_the_one_level_hierarchy(client, store):
    root = mk(client)
    child = mk(client, parentId=root["id"])
    loner = mk(client)
    other = mk(client)
    before = {k: store.r.dump(k) for k in keys_of(store)}
    cases = [
        (loner["id"], child["id"], "Cannot create a child of an issue that already has a parent (1-level hierarchy limit)"),
        (root["id"], other["id"], "Cannot give a parent to an issue that has children (1-level hierarchy limit)"),
        (loner["id"], loner["id"], "An issue cannot be its own parent"),
        (loner["id"], "nosuchissue", "Parent issue not found"),
    ]
    for issue_id, parent_id, error in cases:
        r = client.patch(f"/api/issues/{issue_id}", json={"parentId": parent_id})
        assert (r.status_code, r.json) == (422, {"error": error}), (issue_id, parent_id)
    assert {k: store.r.dump(k) for k in keys_of(store)} == before


def test_patch_can_move_and_detach_a_child(client):
    a, b = mk(client), mk(client)
    child = mk(client, parentId=a["id"])
    assert client.patch(f"/api/issues/{child['id']}", json={"parentId": b["id"]}).json["data"]["parentId"] == b["id"]
    assert client.get(f"/api/issues/{a['id']}").json["data"]["children"] == []
    assert [c["id"] for c in client.get(f"/api/issues/{b['id']}").json["data"]["children"]] == [child["id"]]
    assert client.patch(f"/api/issues/{child['id']}", json={"parentId": None}).json["data"]["parentId"] is None
    assert client.get(f"/api/issues?parentId={b['id']}").json["total"] == 0
    # a former parent whose children all left may now get a parent itself
    assert client.patch(f"/api/issues/{a['id']}", json={"parentId": b["id"]}).status_code == 200


def test_a_deleted_issue_cannot_be_patched(client):
    issue = mk(client)
    client.delete(f"/api/issues/{issue['id']}")
    r = client.patch(f"/api/issues/{issue['id']}", json={"title": "x"})
    assert (r.status_code, r.json) == (404, {"error": "Issue not found"})


# ----------------------------------------------------------------------------- delete
def test_delete_is_a_soft_delete_answering_204_once_then_404(client, store, clock):
    issue = mk(client)
    clock.advance(5)
    r = client.delete(f"/api/issues/{issue['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (client.get(f"/api/issues/{issue['id']}").status_code) == 404
    r = client.delete(f"/api/issues/{issue['id']}")
    assert (r.status_code, r.json) == (404, {"error": "Issue not found"})
    kept = store.issues.get(issue["id"])
    assert kept is not None and kept["deletedAt"] == clock.now_ms() and kept["title"] == "An issue"


def test_deleting_a_parent_does_not_cascade_to_children(client):
    root = mk(client)
    child = mk(client, parentId=root["id"])
    client.delete(f"/api/issues/{root['id']}")
    assert client.get(f"/api/issues/{child['id']}").status_code == 200
    assert ids(client.get("/api/issues")) == [child["id"]]


# ----------------------------------------------------------------------------- label links (improvement 12)
def test_attaching_a_label_answers_201_with_the_issue_labels_and_is_filterable(client):
    issue = mk(client)
    label = mk_label(client, "bug")
    r = client.post(f"/api/issues/{issue['id']}/labels", json={"labelId": label})
    assert r.status_code == 201
    assert r.json == {"data": [{"id": label, "name": "bug", "color": "#f00"}]}
    assert client.post(f"/api/issues/{issue['id']}/labels", json={"labelId": label}).status_code == 201
    assert ids(client.get(f"/api/issues?labelId={label}")) == [issue["id"]]
    assert len(client.get(f"/api/issues/{issue['id']}").json["data"]["labels"]) == 1


def test_detaching_a_label_answers_204_and_a_second_detach_404(client):
    issue = mk(client)
    label = mk_label(client, "bug")
    client.post(f"/api/issues/{issue['id']}/labels", json={"labelId": label})
    r = client.delete(f"/api/issues/{issue['id']}/labels/{label}")
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["labels"] == []
    assert client.get(f"/api/issues?labelId={label}").json["total"] == 0
    r = client.delete(f"/api/issues/{issue['id']}/labels/{label}")
    assert (r.status_code, r.json) == (404, {"error": "Label is not attached to this issue"})


def test_label_link_errors_write_nothing(client, store):
    issue = mk(client)
    label = mk_label(client, "bug")
    client.delete(f"/api/labels/{label}")
    before = keys_of(store)
    cases = [
        (client.post("/api/issues/nosuch/labels", json={"labelId": label}), 404, "Issue not found"),
        (client.post(f"/api/issues/{issue['id']}/labels", json={"labelId": "nolabel"}), 422, "Label not found: nolabel"),
        (client.post(f"/api/issues/{issue['id']}/labels", json={"labelId": label}), 422, f"Label not found: {label}"),
        (client.post(f"/api/issues/{issue['id']}/labels", json={}), 400, "Invalid request: labelId is required."),
        (client.delete(f"/api/issues/nosuch/labels/{label}"), 404, "Issue not found"),
    ]
    for r, status, error in cases:
        assert (r.status_code, r.json["error"]) == (status, error)
    assert keys_of(store) == before


# ----------------------------------------------------------------------------- never a 500 from user input
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**20) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_fields = st.sampled_from(["title", "type", "status", "priority", "parentId", "projectId", "labelIds", "hypothesis",
                           "signalPayload", "description", "commits", "pullRequests", "agentSummary", "body",
                           "authorName", "authorType", "relatedIssueId", "labelId", "name", "color", "goalId"])
_bodies = st.dictionaries(_fields, _json, max_size=5) | _json


@pytest.mark.slow
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, target=st.sampled_from(["POST /api/issues", "PATCH /api/issues/{id}", "POST /api/labels",
                                             "POST /api/issues/{id}/comments", "POST /api/issues/{id}/relations",
                                             "POST /api/issues/{id}/labels", "POST /api/projects",
                                             "PATCH /api/goals/{goal}", "POST /api/keys"]))
def test_arbitrary_json_bodies_never_cause_a_server_error(client, store, body, target):
    issue = store.issues.create({"title": "fuzz", "type": "task"})
    goal = store.goals.create({"title": "g"})
    method, path = target.split(" ")
    r = client.request(method, path.format(id=issue["id"], goal=goal["id"]), json=body)
    assert r.status_code < 500, (target, body, r.text)
    assert isinstance(r.json.get("error", ""), str)


@pytest.mark.slow
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["status", "type", "projectId", "labelId", "priority", "parentId",
                                               "limit", "offset", "bogus"]),
                              st.text(max_size=12), max_size=4))
def test_arbitrary_list_queries_are_answered_200_or_400(client, params):
    r = client.get("/api/issues", params=params)
    assert r.status_code in (200, 400), (params, r.text)


def test_an_issue_is_also_found_by_its_number_and_unknown_or_deleted_numbers_are_404s(client, store):
    first, second = mk(client, title="first"), mk(client, title="second")
    got = client.get(f"/api/issues/{second['number']}")
    assert got.status_code == 200 and got.json["data"]["id"] == second["id"]
    assert got.json["data"]["title"] == "second" and "children" in got.json["data"]
    client.delete(f"/api/issues/{first['id']}")
    before = keys_of(store)
    for ref in (str(first["number"]), "0", "999999", "9" * 40):
        r = client.get(f"/api/issues/{ref}")
        assert (r.status_code, r.json) == (404, {"error": "Issue not found"}), ref
    assert keys_of(store) == before
