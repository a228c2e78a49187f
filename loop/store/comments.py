"""Comments on issues, one level of replies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loop import models
from loop.errors import BusinessRuleError, NotFound
from loop.ids import new_id
from loop.models import COMMENT_FIELDS, Row
from loop.store.types import Pipe, is_id

if TYPE_CHECKING:
    from loop.store.base import RedisStore


class Comments:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def _require_issue(self, issue_id: str) -> None:
        # Soft-deleted issues still accept comments (reference behaviour).
        if not is_id(issue_id) or not self.s.r.exists(self.k.issue(issue_id)):
            raise NotFound("Issue not found")

    def create(self, issue_id: str, data: Mapping[str, Any], key_name: str | None = None,
               check: Callable[[Pipe, Row], None] | None = None) -> Row:
        """A comment on ``issue_id``; ``key_name`` is the API key it was made with.

        ``check(pipe, {"id": issue_id})`` may veto the write inside its transaction (a stale
        claim token: the comment is written only while the claim is live)."""
        self._require_issue(issue_id)
        parent_id = data.get("parentId")
        if parent_id and not (is_id(parent_id) and self.s.r.exists(self.k.row("comment", parent_id))):
            raise BusinessRuleError("Parent comment not found")
        row: Row = dict.fromkeys(COMMENT_FIELDS)
        row.update({k: v for k, v in data.items() if k in COMMENT_FIELDS})
        row.update(id=new_id(), issueId=issue_id, createdAt=self.s.now(), keyName=key_name)

        def tx(pipe: Pipe) -> None:
            if check is not None:
                check(pipe, {"id": issue_id})
            seq = self.s.next_seq()  # after the check: a vetoed write changes nothing at all
            pipe.multi()
            self.s.write_row(pipe, "comment", COMMENT_FIELDS, row["id"], row)
            pipe.zadd(self.k.issue_comments(issue_id), {row["id"]: seq})

        self.s.transact(tx)
        return row

    def threaded(self, issue_id: str) -> list[Row]:
        """Top-level comments in creation order, each with its direct ``replies``."""
        self._require_issue(issue_id)
        ids = self.s.r.zrange(self.k.issue_comments(issue_id), 0, -1)
        rows = [models.wire(COMMENT_FIELDS, r) for r in self.s.get_rows("comment", COMMENT_FIELDS, ids)]
        top = [{**r, "replies": []} for r in rows if not r["parentId"]]
        by_id = {r["id"]: r for r in top}
        for r in rows:
            if r["parentId"] in by_id:
                by_id[r["parentId"]]["replies"].append(r)
        return top
