"""Dispatch score: contract 5.2 table, the worked example, and the goal rule of improvement 7."""

from __future__ import annotations

import pytest

from loop.dispatch import scoring
from loop.dispatch.audit import audit

DAY = 86_400


@pytest.mark.parametrize(("priority", "weight"), [(1, 100), (2, 75), (3, 50), (4, 25), (0, 10), (7, 10), (None, 10)])
def test_priority_weights_follow_the_contract_table(priority, weight):
    assert scoring.priority_weight(priority) == weight


@pytest.mark.parametrize(("issue_type", "bonus"), [
    ("signal", 50), ("hypothesis", 40), ("plan", 30), ("task", 20), ("monitor", 10), ("other", 0), (None, 0)])
def test_type_bonuses_follow_the_contract_table(issue_type, bonus):
    assert scoring.type_bonus(issue_type) == bonus


def test_age_counts_whole_days_and_never_goes_negative():
    created = 1_000_000_000_000
    assert scoring.age_days(created, created + 3 * DAY * 1000 - 1) == 2
    assert scoring.age_days(created, created + 3 * DAY * 1000) == 3
    assert scoring.age_days(created, created - 5) == 0


def test_stored_scores_order_issues_exactly_as_live_scores_do_at_any_time():
    issues = [{"priority": p, "type": t, "createdAt": c}
              for p in (0, 1, 4) for t in ("task", "signal") for c in (0, 36_000_000, 5 * DAY * 1000 + 7)]
    by_stored = sorted(issues, key=lambda i: -scoring.stored_score(i, 0))
    for now in (6 * DAY * 1000, 40 * DAY * 1000):
        live = [scoring.score(i, 0, now) for i in by_stored]
        assert live == sorted(live, reverse=True)


def test_the_worked_example_scores_148(client, store, clock):
    project = client.post("/api/projects", json={"name": "P"}).json["data"]
    client.post("/api/goals", json={"title": "G", "projectId": project["id"]})
    issue = client.post("/api/issues", json={"title": "Crash", "type": "signal", "priority": 2,
                                             "status": "todo", "projectId": project["id"]}).json["data"]
    clock.advance(3 * DAY)
    r = client.get("/api/dispatch/queue")
    assert r.status_code == 200
    [item] = r.json["data"]
    assert item["issue"]["id"] == issue["id"]
    assert item["score"] == 148
    assert item["breakdown"] == {"priorityWeight": 75, "goalBonus": 20, "ageBonus": 3, "typeBonus": 50}


def _queue(client, **params):
    r = client.get("/api/dispatch/queue", params=params)
    assert r.status_code == 200, r.text
    return r.json


def test_each_priority_and_type_gets_its_weight_in_the_queue_breakdown(client):
    for p in range(5):
        for t in ("signal", "hypothesis", "plan", "task", "monitor"):
            client.post("/api/issues", json={"title": f"{p}-{t}", "type": t, "priority": p, "status": "todo"})
    body = _queue(client, limit=200)
    assert body["total"] == 25
    seen = {(i["issue"]["priority"], i["issue"]["type"]): i for i in body["data"]}
    for (p, t), item in seen.items():
        assert item["breakdown"]["priorityWeight"] == scoring.priority_weight(p)
        assert item["breakdown"]["typeBonus"] == scoring.type_bonus(t)
        assert item["score"] == sum(item["breakdown"].values())
    scores = [i["score"] for i in body["data"]]
    assert scores == sorted(scores, reverse=True)
    assert (body["data"][0]["issue"]["priority"], body["data"][0]["issue"]["type"]) == (1, "signal")


def test_a_month_old_low_priority_issue_outranks_a_fresh_medium_one_without_rescoring(client, store, clock):
    old = client.post("/api/issues", json={"title": "old", "type": "task", "priority": 4, "status": "todo"}).json
    stored = store.r.zrange(store.keys.dispatch_ready(), 0, -1, withscores=True)
    clock.advance(30 * DAY)
    new = client.post("/api/issues", json={"title": "new", "type": "task", "priority": 3, "status": "todo"}).json
    body = _queue(client)["data"]
    assert [(i["issue"]["id"], i["score"]) for i in body] == [(old["data"]["id"], 75), (new["data"]["id"], 70)]
    assert store.r.zscore(store.keys.dispatch_ready(), stored[0][0]) == stored[0][1]


def test_a_goal_pointing_at_the_project_gives_its_issues_the_bonus(client, store):
    project = client.post("/api/projects", json={"name": "P"}).json["data"]
    issue = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo",
                                             "projectId": project["id"]}).json["data"]
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 0
    goal = client.post("/api/goals", json={"title": "G", "projectId": project["id"]}).json["data"]
    item = _queue(client)["data"][0]
    assert item["issue"]["id"] == issue["id"] and item["breakdown"]["goalBonus"] == 20
    client.patch(f"/api/goals/{goal['id']}", json={"status": "achieved"})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 0
    assert audit(store) == []


def test_a_project_whose_goal_id_names_an_active_goal_gets_the_bonus_too(client, store):
    goal = client.post("/api/goals", json={"title": "G"}).json["data"]
    project = client.post("/api/projects", json={"name": "P"}).json["data"]
    client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo", "projectId": project["id"]})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 0
    client.patch(f"/api/projects/{project['id']}", json={"goalId": goal["id"]})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 20
    client.delete(f"/api/goals/{goal['id']}")
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 0
    assert audit(store) == []


def test_goal_changes_reorder_the_ready_sets_of_the_affected_projects_only(client, store):
    a = client.post("/api/projects", json={"name": "A"}).json["data"]
    b = client.post("/api/projects", json={"name": "B"}).json["data"]
    ia = client.post("/api/issues", json={"title": "a", "type": "task", "status": "todo", "projectId": a["id"]}).json
    ib = client.post("/api/issues", json={"title": "b", "type": "task", "status": "todo", "projectId": b["id"]}).json
    goal = client.post("/api/goals", json={"title": "G", "projectId": a["id"]}).json["data"]
    assert [i["issue"]["id"] for i in _queue(client)["data"]] == [ia["data"]["id"], ib["data"]["id"]]
    client.patch(f"/api/goals/{goal['id']}", json={"projectId": b["id"]})
    assert [i["issue"]["id"] for i in _queue(client)["data"]] == [ib["data"]["id"], ia["data"]["id"]]
    assert [i["issue"]["id"] for i in _queue(client, projectId=b["id"])["data"]] == [ib["data"]["id"]]
    assert audit(store) == []


def test_issues_entering_the_queue_later_get_the_current_bonus(client, store):
    project = client.post("/api/projects", json={"name": "P"}).json["data"]
    client.post("/api/goals", json={"title": "G", "projectId": project["id"]})
    issue = client.post("/api/issues", json={"title": "t", "type": "task", "projectId": project["id"]}).json["data"]
    assert _queue(client)["total"] == 0  # triage is not dispatchable
    client.patch(f"/api/issues/{issue['id']}", json={"status": "todo"})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 20
    client.patch(f"/api/issues/{issue['id']}", json={"projectId": None})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 0
    assert audit(store) == []


def test_priority_and_type_changes_rescore_a_ready_issue(client, store):
    a = client.post("/api/issues", json={"title": "a", "type": "task", "priority": 3, "status": "todo"}).json["data"]
    b = client.post("/api/issues", json={"title": "b", "type": "task", "priority": 2, "status": "todo"}).json["data"]
    assert _queue(client)["data"][0]["issue"]["id"] == b["id"]
    client.patch(f"/api/issues/{a['id']}", json={"priority": 1})
    assert _queue(client)["data"][0]["issue"]["id"] == a["id"]
    client.patch(f"/api/issues/{b['id']}", json={"type": "signal"})
    assert [i["score"] for i in _queue(client)["data"]] == [125, 120]
    assert audit(store) == []


def test_deleting_the_project_or_creating_an_inactive_goal_gives_no_bonus(client, store):
    project = client.post("/api/projects", json={"name": "P"}).json["data"]
    client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo", "projectId": project["id"]})
    client.post("/api/goals", json={"title": "G", "projectId": project["id"], "status": "abandoned"})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 0
    client.post("/api/goals", json={"title": "G2", "projectId": project["id"]})
    assert _queue(client)["data"][0]["breakdown"]["goalBonus"] == 20
    assert client.delete(f"/api/projects/{project['id']}").status_code == 204
    body = _queue(client)
    assert body["total"] == 1 and body["data"][0]["breakdown"]["goalBonus"] == 0  # its issues keep dispatching
    assert audit(store) == []
