"""Labels: names unique across all rows, deleted ones included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loop.errors import Conflict, NotFound
from loop.models import LABEL_FIELDS, Row, decode
from loop.store.rows import RowService
from loop.store.types import Pipe


class Labels(RowService):
    kind = "label"
    index_name = "labels"
    fields = LABEL_FIELDS
    not_found = "Label not found"
    has_updated_at = False

    def create(self, data: Mapping[str, Any]) -> Row:
        row = self.new_row(data)
        seq = self.s.next_seq()
        names = self.k.label_names()

        def tx(pipe: Pipe) -> Row:
            if pipe.hexists(names, row["name"]):
                raise Conflict("Label name already exists")
            pipe.multi()
            pipe.hset(names, row["name"], row["id"])
            self.stage_create(pipe, row, seq)
            return row

        return self._written(self.s.transact(tx, names))

    def ensure(self, name: str, color: str) -> Row:
        """The live label called ``name``: created with ``color`` if absent, restored if soft-deleted
        (names stay reserved by deleted labels, so a new one could not take the name)."""
        existing = self.s.r.hget(self.k.label_names(), name)
        if not existing:
            try:
                return self.create({"name": name, "color": color})
            except Conflict:
                existing = self.s.r.hget(self.k.label_names(), name) or ""
        return self._restore(existing)

    def _restore(self, label_id: str) -> Row:
        """The label, undeleted if needed (back at the end of the creation order)."""
        key = self.k.row(self.kind, label_id)

        def tx(pipe: Pipe) -> Row:
            raw = pipe.hgetall(key)
            if not raw:
                raise NotFound(self.not_found)
            row = decode(self.fields, raw)
            if row["deletedAt"] is not None:
                seq = self.s.next_seq()
                pipe.multi()
                pipe.hdel(key, "deletedAt")
                pipe.zadd(self.index, {label_id: seq})
                row["deletedAt"] = None
            return row

        return self.s.transact(tx, key)
