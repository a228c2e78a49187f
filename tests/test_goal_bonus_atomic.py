"""The goal bonus and the goal <-> project links commit in the same MULTI as the goal or project
row (issue 10.9): a process that dies right after the row's transaction leaves no drift."""

from __future__ import annotations

import pytest

from loop.dispatch.audit import audit


def bonus(store, project_id: str) -> int:
    """The goal bonus dispatch scores ``project_id``'s issues with (its stored value)."""
    return int(store.r.hget(store.keys.dispatch_goal_bonus(), project_id) or 0)


class Died(Exception):
    """The process died right after the row's transaction committed."""


def test_goal_and_project_writes_leave_no_drift_even_when_the_process_dies_after_commit(store, monkeypatch):
    project = store.projects.create({"name": "P"})
    other = store.projects.create({"name": "Q"})
    store.issues.create({"title": "t", "type": "task", "status": "todo", "projectId": project["id"]})
    store.issues.create({"title": "u", "type": "task", "status": "todo", "projectId": other["id"]})

    def die(row):
        raise Died

    for service in (store.goals, store.projects):
        monkeypatch.setattr(service, "_written", die)
    with pytest.raises(Died):
        store.goals.create({"title": "G", "projectId": project["id"]})
    assert bonus(store, project["id"]) == 20
    assert audit(store) == []
    [goal] = store.goals.list(10, 0)[0]
    with pytest.raises(Died):
        store.goals.update(goal["id"], {"projectId": other["id"]})
    assert (bonus(store, project["id"]), bonus(store, other["id"])) == (0, 20)
    assert audit(store) == []
    with pytest.raises(Died):
        store.projects.update(project["id"], {"goalId": goal["id"]})
    assert bonus(store, project["id"]) == 20
    assert audit(store) == []
    with pytest.raises(Died):
        store.goals.delete(goal["id"])
    assert (bonus(store, project["id"]), bonus(store, other["id"])) == (0, 0)
    assert audit(store) == []
    with pytest.raises(Died):
        store.projects.delete(other["id"])
    assert audit(store) == []
