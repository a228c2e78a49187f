"""Projects: groups of issues with a health and an optional goal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loop.errors import BusinessRuleError
from loop.models import PROJECT_FIELDS, Row
from loop.store.rows import RowService


class Projects(RowService):
    kind = "project"
    index_name = "projects"
    fields = PROJECT_FIELDS
    not_found = "Project not found"

    def _check_goal(self, goal_id: Any) -> None:
        if isinstance(goal_id, str) and goal_id:
            goal = self.s.goals.get(goal_id)
            if goal is None or goal["deletedAt"] is not None:
                raise BusinessRuleError("Goal not found")

    def create(self, data: Mapping[str, Any]) -> Row:
        self._check_goal(data.get("goalId"))
        return super().create({"status": "backlog", "health": "on_track", **data})

    def update(self, row_id: str, changes: Mapping[str, Any]) -> Row:
        self.get_live(row_id)
        self._check_goal(changes.get("goalId"))
        return super().update(row_id, changes)

    def detail(self, project_id: str) -> Row:
        project = self.get_live(project_id)
        goal = self.s.goals.get(project["goalId"]) if project["goalId"] else None
        return {
            **self.wire(project),
            "goal": self.s.goals.wire(goal) if goal and goal["deletedAt"] is None else None,
            "issueCounts": self.s.issues.counts_by_project(project_id),
        }
