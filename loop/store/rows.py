"""CRUD for simple soft-deletable rows (projects, goals, labels, templates...)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loop import models
from loop.errors import NotFound
from loop.ids import new_id
from loop.models import Row
from loop.store.types import Pipe, is_id

if TYPE_CHECKING:
    from loop.store.base import RedisStore


class RowHook:
    """Extension point run inside every create/update/delete transaction of a row service, like
    :class:`loop.store.base.IssueHook`: ``prepare`` reads (and ``pipe.watch``-es) while the
    transaction watches, ``stage`` queues writes after ``MULTI``. ``old`` is ``None`` on create;
    ``new`` has ``deletedAt`` set on delete. Dispatch keeps goal bonuses and links with it."""

    def prepare(self, pipe: Pipe, old: Row | None, new: Row) -> Any:
        return None

    def stage(self, pipe: Pipe, old: Row | None, new: Row, state: Any) -> None:
        return None


class RowService:
    """A kind of row kept as ``P:<kind>:<id>`` hashes plus a creation-ordered index."""

    kind: str = ""
    index_name: str = ""
    fields: Mapping[str, str] = {}
    not_found: str = "Not found"
    has_updated_at: bool = True
    #: Keep ``P:idx:<index_name>:status:<status>`` (live rows by status, score = row seq) so
    #: ``list`` can filter by status at the cost of one page, not of every row.
    status_indexed: bool = False

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        #: Called with the written row after every create, update and delete (dispatch
        #: re-syncs goal bonuses from goal and project writes).
        self.after_write: list[Callable[[Row], None]] = []
        #: Run inside the write's transaction (see :class:`RowHook`).
        self.hooks: list[RowHook] = []

    def _written(self, row: Row) -> Row:
        for hook in self.after_write:
            hook(row)
        return row

    @property
    def index(self) -> str:
        return self.k.index(self.index_name)

    def get(self, row_id: str) -> Row | None:
        return self.s.get_row(self.kind, self.fields, row_id)

    def get_live(self, row_id: str) -> Row:
        return self.s.live_row(self.kind, self.fields, row_id, self.not_found)

    def wire(self, row: Row) -> Row:
        return models.wire(self.fields, row)

    def list(self, limit: int, offset: int) -> tuple[list[Row], int]:
        return self.s.page(self.index, self.kind, self.fields, limit, offset)

    def list_by_status(self, limit: int, offset: int, statuses: Sequence[str]) -> tuple[builtins.list[Row], int]:
        """One page, in creation order, of the rows with one of ``statuses`` (``status_indexed``)."""
        if len(statuses) == 1:
            return self.s.page(self.k.status_index(self.index_name, statuses[0]), self.kind, self.fields,
                               limit, offset)
        # Several statuses: merge the first offset+limit of each index by score (creation order).
        pipe = self.s.r.pipeline(transaction=False)
        for status in statuses:
            key = self.k.status_index(self.index_name, status)
            pipe.zrange(key, 0, offset + limit - 1, withscores=True)
            pipe.zcard(key)
        replies = pipe.execute()
        merged = sorted(pair for ranked in replies[0::2] for pair in ((s, m) for m, s in ranked))
        ids = [member for _, member in merged[offset:offset + limit]]
        return self.s.get_rows(self.kind, self.fields, ids), sum(int(n) for n in replies[1::2])

    def new_row(self, data: Mapping[str, Any], row_id: str | None = None) -> Row:
        now = self.s.now()
        row: Row = dict.fromkeys(self.fields)
        row.update({k: v for k, v in data.items() if k in self.fields})
        row.update(id=row_id or new_id(), createdAt=now, deletedAt=None)
        if self.has_updated_at:
            row["updatedAt"] = now
        return row

    def stage_create(self, pipe: Pipe, row: Row, seq: int) -> None:
        """Queue the writes creating ``row`` (ordered by ``seq``) on a MULTI pipeline."""
        self.s.write_row(pipe, self.kind, self.fields, row["id"], row)
        pipe.zadd(self.index, {row["id"]: seq})
        if self.status_indexed:
            pipe.zadd(self.k.status_index(self.index_name, row["status"]), {row["id"]: seq})

    def _prepare(self, pipe: Pipe, old: Row | None, new: Row) -> tuple[Any, ...]:
        return tuple(h.prepare(pipe, old, new) for h in self.hooks)

    def _stage(self, pipe: Pipe, old: Row | None, new: Row, states: tuple[Any, ...]) -> None:
        for h, st in zip(self.hooks, states, strict=True):
            h.stage(pipe, old, new, st)

    def create(self, data: Mapping[str, Any]) -> Row:
        row = self.new_row(data)
        seq = self.s.next_seq()

        def tx(pipe: Pipe) -> Row:
            states = self._prepare(pipe, None, row)
            pipe.multi()
            self.stage_create(pipe, row, seq)
            self._stage(pipe, None, row, states)
            return row

        return self._written(self.s.transact(tx))

    def update(self, row_id: str, changes: Mapping[str, Any]) -> Row:
        if not is_id(row_id):
            raise NotFound(self.not_found)
        key = self.k.row(self.kind, row_id)

        def tx(pipe: Pipe) -> Row:
            raw = pipe.hgetall(key)
            old = models.decode(self.fields, raw) if raw else None
            if old is None or old["deletedAt"] is not None:
                raise NotFound(self.not_found)
            new = {**old, **{k: v for k, v in changes.items() if k in self.fields}}
            if self.has_updated_at:
                new["updatedAt"] = self.s.now()
            moved = self.status_indexed and new["status"] != old["status"]
            seq = pipe.zscore(self.index, row_id) if moved else None
            states = self._prepare(pipe, old, new)
            pipe.multi()
            self.s.write_row(pipe, self.kind, self.fields, row_id, {k: v for k, v in new.items() if old[k] != v})
            if moved:
                pipe.zrem(self.k.status_index(self.index_name, old["status"]), row_id)
                pipe.zadd(self.k.status_index(self.index_name, new["status"]), {row_id: seq or 0})
            self._stage(pipe, old, new, states)
            return new

        return self._written(self.s.transact(tx, key))

    def delete(self, row_id: str, idempotent: bool = False) -> Row:
        """Soft delete. ``idempotent``: deleting a deleted row succeeds (labels do this)."""
        if not is_id(row_id):
            raise NotFound(self.not_found)
        key = self.k.row(self.kind, row_id)

        def tx(pipe: Pipe) -> Row:
            raw = pipe.hgetall(key)
            old = models.decode(self.fields, raw) if raw else None
            if old is None or (old["deletedAt"] is not None and not idempotent):
                raise NotFound(self.not_found)
            now = self.s.now()
            stamp = {"deletedAt": now, **({"updatedAt": now} if self.has_updated_at else {})}
            new = {**old, **stamp}
            states = self._prepare(pipe, old, new)
            pipe.multi()
            self.s.write_row(pipe, self.kind, self.fields, row_id, stamp)
            pipe.zrem(self.index, row_id)
            if self.status_indexed:
                pipe.zrem(self.k.status_index(self.index_name, old["status"]), row_id)
            self._stage(pipe, old, new, states)
            return new

        return self._written(self.s.transact(tx, key))
