"""The goal bonus of each project (improvement 7), and rescoring when it changes.

A project "has an active goal" when it is live and either its ``goalId`` names a live active
goal, or a live active goal has ``projectId`` = the project. The bonus applied to each
project's ready issues is kept in ``P:dispatch:goalbonus``; when it changes, one script
shifts the scores of that project's ready set (bounded by the project's ready issues, never
the whole backlog). Issues entering the ready sets later read the bonus then.

:meth:`GoalBonus.install` registers on the goal and project services' ``after_write`` hooks:
after each write, the goal <-> project link indexes are synced from the rows (under WATCH, so
concurrent writes converge) and the affected projects' bonuses recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loop import models
from loop.dispatch import scoring
from loop.dispatch.index import stage_script
from loop.models import GOAL_FIELDS, PROJECT_FIELDS, Row

if TYPE_CHECKING:
    from loop.store.base import RedisStore

RESCORE_SCRIPT = "dispatch_rescore"


def _live(row: Row | None) -> bool:
    return row is not None and row["deletedAt"] is None


class GoalBonus:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def install(self) -> None:
        self.s.goals.after_write.append(lambda row: self.goal_changed(row["id"]))
        self.s.projects.after_write.append(lambda row: self.project_changed(row["id"]))

    # ------------------------------------------------------------------ links
    def _sync_link(self, kind: str, fields: dict[str, str], row_id: str, attr: str, links: str,
                   members: Callable[[str], str]) -> set[str]:
        """Re-index ``row.attr`` (goal.projectId / project.goalId); returns old and new targets."""
        key = self.k.row(kind, row_id)

        def tx(pipe: Any) -> set[str]:
            raw = pipe.hgetall(key)
            row = models.decode(fields, raw) if raw else None
            now = row[attr] if _live(row) and row is not None else None
            before = pipe.hget(links, row_id)
            pipe.multi()
            if before != now:
                if before:
                    pipe.srem(members(before), row_id)
                if now:
                    pipe.sadd(members(now), row_id)
                    pipe.hset(links, row_id, now)
                else:
                    pipe.hdel(links, row_id)
            return {t for t in (before, now) if t}

        return self.s.transact(tx, key, links)

    def goal_changed(self, goal_id: str) -> None:
        projects = self._sync_link("goal", GOAL_FIELDS, goal_id, "projectId", self.k.dispatch_goal_links(),
                                   self.k.dispatch_project_goals)
        projects |= set(self.s.r.smembers(self.k.dispatch_goal_projects(goal_id)))
        for pid in sorted(projects):
            self.sync_project(pid)

    def project_changed(self, project_id: str) -> None:
        self._sync_link("project", PROJECT_FIELDS, project_id, "goalId", self.k.dispatch_project_links(),
                        self.k.dispatch_goal_projects)
        self.sync_project(project_id)

    # ------------------------------------------------------------------ bonus
    def sync_project(self, project_id: str) -> int:
        """Recompute one project's goal bonus and rescore its ready issues if it changed."""
        k = self.k
        pkey, goals_key = k.row("project", project_id), k.dispatch_project_goals(project_id)

        def tx(pipe: Any) -> int:
            raw = pipe.hgetall(pkey)
            project = models.decode(PROJECT_FIELDS, raw) if raw else None
            goal_ids = set(pipe.smembers(goals_key))
            if project is not None and project["goalId"]:
                goal_ids.add(project["goalId"])
            if goal_ids:
                pipe.watch(*[k.row("goal", g) for g in sorted(goal_ids)])
            goals = self.s.get_rows("goal", GOAL_FIELDS, sorted(goal_ids))
            active = _live(project) and any(_live(g) and g["status"] == "active" for g in goals)
            bonus = scoring.GOAL_BONUS if active else 0
            pipe.multi()
            stage_script(pipe, RESCORE_SCRIPT, [k.dispatch_goal_bonus(), k.dispatch_ready(),
                                                k.dispatch_ready(project_id)], [project_id, bonus])
            return bonus

        return self.s.transact(tx, pkey, goals_key, k.dispatch_goal_bonus())

    def bonus(self, project_id: str | None) -> int:
        if not project_id:
            return 0
        return int(self.s.r.hget(self.k.dispatch_goal_bonus(), project_id) or 0)
