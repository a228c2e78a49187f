"""Prompt templates and their versions, kept as Redis hashes with creation-ordered indexes.

Every write that can change which template an issue gets (create, update, delete, a new
version, promote) also INCRs ``P:prompts:generation`` in the same MULTI, so selection can
cache the template list per process and reload only when the generation moves.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loop import models
from loop.errors import BusinessRuleError, Conflict, NotFound
from loop.ids import new_id
from loop.models import Row
from loop.prompts import engine, history
from loop.prompts.fields import TEMPLATE, TEMPLATE_FIELDS, VERSION, VERSION_FIELDS
from loop.store.base import is_id
from loop.store.rows import RowService
from loop.store.types import Pipe

if TYPE_CHECKING:
    from loop.store.base import RedisStore

TEMPLATE_NOT_FOUND = "Template not found"
VERSION_NOT_FOUND = "Version not found"


class Templates(RowService):
    """``/api/templates`` rows. Slugs are unique across all rows, deleted ones included."""

    kind = TEMPLATE
    index_name = "templates"
    fields = TEMPLATE_FIELDS
    not_found = TEMPLATE_NOT_FOUND

    def __init__(self, store: RedisStore, before: Callable[[], None]) -> None:
        super().__init__(store)
        self._before = before  # seeds the defaults on first use

    def list(self, limit: int, offset: int) -> tuple[list[Row], int]:  # noqa: A003
        self._before()
        return super().list(limit, offset)

    def get_live(self, row_id: str) -> Row:
        self._before()
        return super().get_live(row_id)

    def live_all(self) -> builtins.list[Row]:
        """Every live template in creation order (selection, dashboard)."""
        self._before()
        return self.s.get_rows(self.kind, self.fields, self.s.r.zrange(self.index, 0, -1))

    def create(self, data: Mapping[str, Any]) -> Row:
        self._before()
        row = self.new_row({"conditions": {}, "specificity": 10, **data, "activeVersionId": None})
        seq = self.s.next_seq()
        slugs = self.k.template_slugs()

        def tx(pipe: Pipe) -> Row:
            if pipe.hexists(slugs, row["slug"]):
                raise Conflict("Template slug already exists")
            pipe.multi()
            pipe.hset(slugs, row["slug"], row["id"])
            self.stage_create(pipe, row, seq)
            pipe.incr(self.k.prompts_generation())
            return row

        return self.s.transact(tx, slugs)

    def update(self, row_id: str, changes: Mapping[str, Any]) -> Row:
        self._before()
        key = self.k.row(self.kind, row_id)
        allowed = {k: v for k, v in changes.items() if k in ("name", "description", "conditions",
                                                              "specificity", "projectId")}

        def tx(pipe: Pipe) -> Row:
            old = self.s.get_row(self.kind, self.fields, row_id, client=pipe)
            if old is None or old["deletedAt"] is not None:
                raise NotFound(self.not_found)
            new = {**old, **allowed, "updatedAt": self.s.now()}
            pipe.multi()
            self.s.write_row(pipe, self.kind, self.fields, row_id, {k: v for k, v in new.items() if old[k] != v})
            pipe.incr(self.k.prompts_generation())
            return new

        if not is_id(row_id):
            raise NotFound(self.not_found)
        return self.s.transact(tx, key)

    def delete(self, row_id: str, idempotent: bool = False) -> Row:
        self._before()
        row = super().delete(row_id, idempotent)
        self.s.r.incr(self.k.prompts_generation())
        return row


class Versions:
    """Immutable template versions: numbered per template, one of them active."""

    def __init__(self, store: RedisStore, templates: Templates,
                 stats: Callable[[str], Mapping[str, Any] | None]) -> None:
        self.s = store
        self.k = store.keys
        self.templates = templates
        self._stats = stats

    def get(self, version_id: str) -> Row | None:
        return self.s.get_row(VERSION, VERSION_FIELDS, version_id)

    def get_many(self, ids: builtins.list[str]) -> builtins.list[Row]:
        return self.s.get_rows(VERSION, VERSION_FIELDS, ids)

    def wire(self, row: Row) -> Row:
        """Wire form; ``completionRate``/``avgDurationMs`` come from the version's sessions."""
        out = models.wire(VERSION_FIELDS, row)
        stats = self._stats(row["id"])
        if stats is not None:
            out["completionRate"], out["avgDurationMs"] = outcome_rates(stats)
        return out

    def list(self, template_id: str, limit: int, offset: int) -> tuple[list[Row], int]:  # noqa: A003
        self.templates.get_live(template_id)
        return self.s.page(self.k.template_versions(template_id), VERSION, VERSION_FIELDS, limit, offset, desc=True)

    def recent(self, template_id: str, n: int) -> builtins.list[Row]:
        return self.get_many(self.s.r.zrevrange(self.k.template_versions(template_id), 0, n - 1))

    def create(self, template_id: str, data: Mapping[str, Any]) -> Row:
        """A new version: v(max+1); active (and pointed to) if the template has no active version."""
        self.templates.get_live(template_id)
        try:
            engine.validate(data["content"])
        except engine.TemplateError as exc:
            raise BusinessRuleError(exc.message) from None
        tkey = self.k.row(TEMPLATE, template_id)
        vkey = self.k.template_versions(template_id)
        now = self.s.now()

        def tx(pipe: Pipe) -> Row:
            template = self.s.get_row(TEMPLATE, TEMPLATE_FIELDS, template_id, client=pipe)
            if template is None or template["deletedAt"] is not None:
                raise NotFound(TEMPLATE_NOT_FOUND)
            top = pipe.zrevrange(vkey, 0, 0, withscores=True)
            number = int(top[0][1]) + 1 if top else 1
            activate = not template["activeVersionId"]
            row: Row = dict.fromkeys(VERSION_FIELDS)
            row.update(
                id=new_id(), templateId=template_id, version=number, content=data["content"],
                changelog=data.get("changelog"), authorType=data["authorType"], authorName=data["authorName"],
                status="active" if activate else "draft", usageCount=0, createdAt=now,
            )
            pipe.multi()
            self.s.write_row(pipe, VERSION, VERSION_FIELDS, row["id"], row)
            pipe.zadd(vkey, {row["id"]: number})
            if activate:
                pipe.hset(tkey, mapping={"activeVersionId": row["id"], "updatedAt": str(now)})
            pipe.incr(self.k.prompts_generation())
            return row

        return self.s.transact(tx, tkey, vkey)

    def promote(self, template_id: str, version_id: str, *, actor: str = "api", action: str = "promote",
                reason: str | None = None, figures: Mapping[str, Any] | None = None,
                expect_candidate: str | None = None) -> Row:
        """Make ``version_id`` the active version and retire the previous one, atomically.

        The version must render (:meth:`check_renders`). When it is the template's candidate the
        experiment ends in the same MULTI; ``expect_candidate``: only if that is still the
        candidate (the worker's decision). The switch is recorded in the template's history.
        """
        self.templates.get_live(template_id)
        if not is_id(version_id):
            raise NotFound(VERSION_NOT_FOUND)
        tkey = self.k.row(TEMPLATE, template_id)
        vkey = self.k.row(VERSION, version_id)
        target = self.get(version_id)
        if target is not None and target["templateId"] == template_id and target["status"] != "active":
            self.check_renders(target)

        def tx(pipe: Pipe) -> Row:
            template = self.s.get_row(TEMPLATE, TEMPLATE_FIELDS, template_id, client=pipe)
            if template is None or template["deletedAt"] is not None:
                raise NotFound(TEMPLATE_NOT_FOUND)
            if expect_candidate is not None and template["candidateVersionId"] != expect_candidate:
                raise Conflict("The candidate changed while it was evaluated")
            version = self.s.get_row(VERSION, VERSION_FIELDS, version_id, client=pipe)
            if version is None or version["templateId"] != template_id:
                raise NotFound(VERSION_NOT_FOUND)
            if version["status"] == "active":
                raise BusinessRuleError("Version is already active")
            previous = template["activeVersionId"]
            now = self.s.now()
            changes: dict[str, Any] = {"activeVersionId": version_id, "updatedAt": now}
            if template["candidateVersionId"] == version_id:
                changes.update(candidateVersionId=None, candidateShare=None, autoPromote=None)
            pipe.multi()
            if previous and previous != version_id:
                pipe.hset(self.k.row(VERSION, previous), "status", "retired")
            pipe.hset(vkey, "status", "active")
            self.s.write_row(pipe, TEMPLATE, TEMPLATE_FIELDS, template_id, changes)
            self.stage_history(pipe, template_id, action, actor, previous, version_id, reason, figures)
            pipe.incr(self.k.prompts_generation())
            return {**version, "status": "active"}

        # Only the template row is watched: every change of a version's status (here, and a first
        # version's activation in create) writes the template row in the same MULTI, so a changed
        # status fails this EXEC anyway. Watching the version rows would also watch their usage
        # counters, which every dispatch increments: a promotion under load would never commit.
        return self.s.transact(tx, tkey)

    def check_renders(self, version: Row) -> None:
        """A version that does not compile, or failed to render at dispatch, never becomes active (422)."""
        try:
            engine.compile_cached(version["content"])
        except engine.TemplateError as exc:
            raise BusinessRuleError(f"Version does not render: {exc.message}") from None
        failed = self.s.r.hget(self.k.version_experiment(version["id"]), "renderFailed")
        if failed and int(failed) > 0:
            raise BusinessRuleError(f"Version failed to render {failed} time(s) at dispatch")

    def stage_history(self, pipe: Pipe, template_id: str, action: str, actor: str, from_version: str | None,
                      to_version: str | None, reason: str | None, figures: Mapping[str, Any] | None) -> None:
        """Queue a history entry (on a MULTI pipeline; the sequence comes from its own INCR)."""
        history.stage(pipe, self.k, template_id, self.s.next_seq(), self.s.now(), action, actor,
                      from_version, to_version, reason, figures)

    def history(self, template_id: str, limit: int, offset: int) -> tuple[builtins.list[dict[str, Any]], int]:
        self.templates.get_live(template_id)
        return history.page(self.s.r, self.k, template_id, limit, offset)


def outcome_rates(stats: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(completionRate, avgDurationMs)`` from a version's session counters.

    completionRate = completed / sessions that ended (completed, failed, expired, released);
    sessions still running are not counted yet. avgDurationMs = mean claim -> done time of
    the completed ones. ``None`` until there is something to divide by.
    """
    def num(name: str) -> float:
        try:
            return float(stats.get(name) or 0)
        except (TypeError, ValueError):
            return 0.0

    completed = num("completed")
    ended = completed + num("failed") + num("expired") + num("released")
    rate = completed / ended if ended else None
    duration = num("completedDurationMsSum") / completed if completed else None
    return rate, duration
