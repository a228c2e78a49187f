"""Issue relations: directional rows (issue -> relatedIssue), hard-deleted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loop import models
from loop.errors import BusinessRuleError, NotFound
from loop.ids import new_id
from loop.models import RELATION_FIELDS, Row
from loop.store.types import Pipe

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: A veto run inside the write's transaction: ``check(pipe, issue_row)`` (claim-token fencing).
Check = Callable[[Pipe, Row], None]


class RelationHook:
    """Extension point run inside relation writes (dispatch keeps blocker counts with it)."""

    def prepare(self, pipe: Pipe, relation: Row, added: bool) -> Any:
        return None

    def stage(self, pipe: Pipe, relation: Row, added: bool, state: Any) -> None:
        return None


class Relations:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        self.hooks: list[RelationHook] = []

    def get(self, relation_id: str) -> Row | None:
        return self.s.get_row("relation", RELATION_FIELDS, relation_id)

    def wire(self, row: Row) -> Row:
        return models.wire(RELATION_FIELDS, row)

    def outgoing(self, issue_id: str) -> list[Row]:
        ids = self.s.r.zrange(self.k.issue_relations(issue_id), 0, -1)
        return self.s.get_rows("relation", RELATION_FIELDS, ids)

    def incoming(self, issue_id: str) -> list[Row]:
        """Relations other issues hold towards ``issue_id`` (its ``relatedIssueId``), creation order."""
        ids = self.s.r.zrange(self.k.issue_relations_in(issue_id), 0, -1)
        return self.s.get_rows("relation", RELATION_FIELDS, ids)

    def create(self, issue_id: str, rel_type: str, related_id: str, check: Check | None = None) -> Row:
        """A relation ``issue_id -> related_id``; ``check`` may veto it (see ``_write``)."""
        # Order of checks as the reference: source exists (deleted still counts), target exists, not self.
        if self.s.issues.get(issue_id) is None:
            raise NotFound("Issue not found")
        if self.s.issues.get(related_id) is None:
            raise BusinessRuleError("Related issue not found")
        if issue_id == related_id:
            raise BusinessRuleError("Cannot create a relation to the same issue")
        row: Row = {
            "id": new_id(), "type": rel_type, "issueId": issue_id, "relatedIssueId": related_id,
            "createdAt": self.s.now(),
        }

        def stage(pipe: Pipe) -> None:
            # The sequence is drawn here, after the check: a vetoed write changes nothing at all.
            seq = self.s.next_seq()
            self.s.write_row(pipe, "relation", RELATION_FIELDS, row["id"], row)
            pipe.zadd(self.k.issue_relations(issue_id), {row["id"]: seq})
            pipe.zadd(self.k.issue_relations_in(related_id), {row["id"]: seq})

        self._write(row, added=True, stage=stage, check=check)
        return row

    def delete(self, relation_id: str, check: Check | None = None) -> Row:
        row = self.get(relation_id)
        if row is None:
            raise NotFound("Relation not found")
        self._write(row, added=False, stage=lambda pipe: (
            pipe.delete(self.k.row("relation", relation_id)),
            pipe.zrem(self.k.issue_relations(row["issueId"]), relation_id),
            pipe.zrem(self.k.issue_relations_in(row["relatedIssueId"]), relation_id),
        ), watch=self.k.row("relation", relation_id), check=check)
        return row

    def _write(self, row: Row, added: bool, stage: Callable[[Pipe], object], watch: str | None = None,
               check: Check | None = None) -> None:
        """Write in one transaction with the hooks. ``check(pipe, {"id": issueId})`` runs first
        and may veto (a stale claim token of the relation's source issue)."""
        key = self.k.row("relation", row["id"])

        def tx(pipe: Pipe) -> None:
            if not added and not pipe.exists(key):
                raise NotFound("Relation not found")
            if check is not None:
                check(pipe, {"id": row["issueId"]})
            states = [h.prepare(pipe, row, added) for h in self.hooks]
            pipe.multi()
            stage(pipe)
            for h, st in zip(self.hooks, states, strict=True):
                h.stage(pipe, row, added, st)

        if watch:
            self.s.transact(tx, watch)
        else:
            self.s.transact(tx)
