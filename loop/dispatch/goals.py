"""The goal bonus of each project (improvement 7), and rescoring when it changes.

A project "has an active goal" when it is live and either its ``goalId`` names a live active
goal, or a live active goal has ``projectId`` = the project. The bonus applied to each
project's ready issues is kept in ``P:dispatch:goalbonus``; when it changes, one script
shifts the scores of that project's ready set (bounded by the project's ready issues, never
the whole backlog). Issues entering the ready sets later read the bonus then.

:meth:`GoalBonus.install` registers row hooks on the goal and project services: inside each
write's own WATCH/MULTI the goal <-> project link indexes are updated from the new row and the
affected projects' bonuses recomputed, so the row, its links and the scores commit together
(a crash can no longer leave them apart).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loop import models
from loop.dispatch import scoring
from loop.dispatch.index import stage_script
from loop.models import GOAL_FIELDS, PROJECT_FIELDS, Row
from loop.store.rows import RowHook
from loop.store.types import Pipe

if TYPE_CHECKING:
    from loop.store.base import RedisStore

RESCORE_SCRIPT = "dispatch_rescore"


def _live(row: Row | None) -> bool:
    return row is not None and row["deletedAt"] is None


@dataclass
class _Plan:
    """Link change ``(before, after)`` of the written row and the bonus of each affected project."""

    link: tuple[str | None, str | None] = (None, None)
    bonuses: dict[str, int] = field(default_factory=dict)


class GoalBonus:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def install(self) -> None:
        self.s.goals.hooks.append(_GoalHook(self))
        self.s.projects.hooks.append(_ProjectHook(self))

    # ------------------------------------------------------------------ bonus
    def compute(self, pipe: Pipe, project_id: str, goal_ids: Iterable[str], goal: Row | None = None,
                project: Row | None = None) -> int:
        """The bonus ``project_id`` gets from ``goal_ids`` (plus its own ``goalId``), watching what it
        reads on ``pipe``; ``goal`` / ``project`` are rows being written (used instead of Redis)."""
        k = self.k
        if project is None:
            pipe.watch(k.row("project", project_id))
            raw = pipe.hgetall(k.row("project", project_id))
            project = models.decode(PROJECT_FIELDS, raw) if raw else None
        if not _live(project) or project is None:
            return 0
        ids = set(goal_ids) | ({project["goalId"]} if project["goalId"] else set())
        rows = {goal["id"]: goal} if goal is not None and goal["id"] in ids else {}
        others = sorted(ids - set(rows))
        if others:
            pipe.watch(*[k.row("goal", g) for g in others])
            rows.update({g["id"]: g for g in self.s.get_rows("goal", GOAL_FIELDS, others)})
        active = any(_live(g) and g["status"] == "active" for g in rows.values())
        return scoring.GOAL_BONUS if active else 0

    def stage_bonus(self, pipe: Pipe, project_id: str, bonus: int) -> None:
        """Queue the rescore: the script shifts the project's ready set by the change at EXEC time."""
        k = self.k
        stage_script(pipe, RESCORE_SCRIPT, [k.dispatch_goal_bonus(), k.dispatch_ready(),
                                            k.dispatch_ready(project_id)], [project_id, bonus])

    def sync_project(self, project_id: str) -> int:
        """Recompute one project's goal bonus from the rows and rescore it if it changed (repair)."""
        goals_key = self.k.dispatch_project_goals(project_id)

        def tx(pipe: Pipe) -> int:
            bonus = self.compute(pipe, project_id, pipe.smembers(goals_key))
            pipe.multi()
            self.stage_bonus(pipe, project_id, bonus)
            return bonus

        return self.s.transact(tx, goals_key)


def _stage_link(pipe: Pipe, links: str, members: Any, row_id: str, plan: _Plan) -> None:
    before, after = plan.link
    if before == after:
        return
    if before:
        pipe.srem(members(before), row_id)
    if after:
        pipe.sadd(members(after), row_id)
        pipe.hset(links, row_id, after)
    else:
        pipe.hdel(links, row_id)


class _GoalHook(RowHook):
    """A goal write: re-index ``goal.projectId`` and rescore every project it touches."""

    def __init__(self, bonus: GoalBonus) -> None:
        self.b = bonus
        self.k = bonus.k

    def prepare(self, pipe: Pipe, old: Row | None, new: Row) -> _Plan:
        k, gid = self.k, new["id"]
        links, pointing = k.dispatch_goal_links(), k.dispatch_goal_projects(gid)
        pipe.watch(links, pointing)
        before = pipe.hget(links, gid)
        after = new["projectId"] if _live(new) else None
        plan = _Plan(link=(before, after))
        for pid in sorted({p for p in (before, after) if p} | set(pipe.smembers(pointing))):
            goals_key = k.dispatch_project_goals(pid)
            pipe.watch(goals_key)
            ids = set(pipe.smembers(goals_key)) - {gid}
            if after == pid:
                ids.add(gid)
            plan.bonuses[pid] = self.b.compute(pipe, pid, ids, goal=new)
        return plan

    def stage(self, pipe: Pipe, old: Row | None, new: Row, state: Any) -> None:
        _stage_link(pipe, self.k.dispatch_goal_links(), self.k.dispatch_project_goals, new["id"], state)
        for pid, bonus in state.bonuses.items():
            self.b.stage_bonus(pipe, pid, bonus)


class _ProjectHook(RowHook):
    """A project write: re-index ``project.goalId`` and rescore the project."""

    def __init__(self, bonus: GoalBonus) -> None:
        self.b = bonus
        self.k = bonus.k

    def prepare(self, pipe: Pipe, old: Row | None, new: Row) -> _Plan:
        k, pid = self.k, new["id"]
        links, goals_key = k.dispatch_project_links(), k.dispatch_project_goals(pid)
        pipe.watch(links, goals_key)
        before = pipe.hget(links, pid)
        after = new["goalId"] if _live(new) else None
        plan = _Plan(link=(before, after))
        plan.bonuses[pid] = self.b.compute(pipe, pid, pipe.smembers(goals_key), project=new)
        return plan

    def stage(self, pipe: Pipe, old: Row | None, new: Row, state: Any) -> None:
        _stage_link(pipe, self.k.dispatch_project_links(), self.k.dispatch_goal_projects, new["id"], state)
        for pid, bonus in state.bonuses.items():
            self.b.stage_bonus(pipe, pid, bonus)
