"""CRUD for simple soft-deletable rows (projects, goals, labels, templates...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loop import models
from loop.errors import NotFound
from loop.ids import new_id
from loop.models import Row
from loop.store.base import is_id

if TYPE_CHECKING:
    from loop.store.base import RedisStore


class RowHook:
    """Extension point run inside every create/update/delete transaction of a row service, like
    :class:`loop.store.base.IssueHook`: ``prepare`` reads (and ``pipe.watch``-es) while the
    transaction watches, ``stage`` queues writes after ``MULTI``. ``old`` is ``None`` on create;
    ``new`` has ``deletedAt`` set on delete. Dispatch keeps goal bonuses and links with it."""

    def prepare(self, pipe: Any, old: Row | None, new: Row) -> Any:
        return None

    def stage(self, pipe: Any, old: Row | None, new: Row, state: Any) -> None:
        return None


class RowService:
    """A kind of row kept as ``P:<kind>:<id>`` hashes plus a creation-ordered index."""

    kind: str = ""
    index_name: str = ""
    fields: Mapping[str, str] = {}
    not_found: str = "Not found"
    has_updated_at: bool = True

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

    def new_row(self, data: Mapping[str, Any], row_id: str | None = None) -> Row:
        now = self.s.now()
        row: Row = dict.fromkeys(self.fields)
        row.update({k: v for k, v in data.items() if k in self.fields})
        row.update(id=row_id or new_id(), createdAt=now, deletedAt=None)
        if self.has_updated_at:
            row["updatedAt"] = now
        return row

    def stage_create(self, pipe: Any, row: Row, seq: int) -> None:
        """Queue the writes creating ``row`` (ordered by ``seq``) on a MULTI pipeline."""
        self.s.write_row(pipe, self.kind, self.fields, row["id"], row)
        pipe.zadd(self.index, {row["id"]: seq})

    def _prepare(self, pipe: Any, old: Row | None, new: Row) -> tuple[Any, ...]:
        return tuple(h.prepare(pipe, old, new) for h in self.hooks)

    def _stage(self, pipe: Any, old: Row | None, new: Row, states: tuple[Any, ...]) -> None:
        for h, st in zip(self.hooks, states, strict=True):
            h.stage(pipe, old, new, st)

    def create(self, data: Mapping[str, Any]) -> Row:
        row = self.new_row(data)
        seq = self.s.next_seq()

        def tx(pipe: Any) -> Row:
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

        def tx(pipe: Any) -> Row:
            raw = pipe.hgetall(key)
            old = models.decode(self.fields, raw) if raw else None
            if old is None or old["deletedAt"] is not None:
                raise NotFound(self.not_found)
            new = {**old, **{k: v for k, v in changes.items() if k in self.fields}}
            if self.has_updated_at:
                new["updatedAt"] = self.s.now()
            states = self._prepare(pipe, old, new)
            pipe.multi()
            self.s.write_row(pipe, self.kind, self.fields, row_id, {k: v for k, v in new.items() if old[k] != v}, old)
            self._stage(pipe, old, new, states)
            return new

        return self._written(self.s.transact(tx, key))

    def delete(self, row_id: str, idempotent: bool = False) -> Row:
        """Soft delete. ``idempotent``: deleting a deleted row succeeds (labels do this)."""
        if not is_id(row_id):
            raise NotFound(self.not_found)
        key = self.k.row(self.kind, row_id)

        def tx(pipe: Any) -> Row:
            raw = pipe.hgetall(key)
            old = models.decode(self.fields, raw) if raw else None
            if old is None or (old["deletedAt"] is not None and not idempotent):
                raise NotFound(self.not_found)
            now = self.s.now()
            stamp = {"deletedAt": now, **({"updatedAt": now} if self.has_updated_at else {})}
            new = {**old, **stamp}
            states = self._prepare(pipe, old, new)
            pipe.multi()
            self.s.write_row(pipe, self.kind, self.fields, row_id, stamp, old)
            pipe.zrem(self.index, row_id)
            self._stage(pipe, old, new, states)
            return new

        return self._written(self.s.transact(tx, key))
