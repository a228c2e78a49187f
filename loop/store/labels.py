"""Labels: names unique across all rows, deleted ones included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loop.errors import Conflict
from loop.models import LABEL_FIELDS, Row
from loop.store.rows import RowService


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

        def tx(pipe: Any) -> Row:
            if pipe.hexists(names, row["name"]):
                raise Conflict("Label name already exists")
            pipe.multi()
            pipe.hset(names, row["name"], row["id"])
            self.stage_create(pipe, row, seq)
            return row

        return self._written(self.s.transact(tx, names))

    def ensure(self, name: str, color: str) -> Row:
        """The label called ``name``, created with ``color`` if absent."""
        existing = self.s.r.hget(self.k.label_names(), name)
        if existing:
            row = self.get(existing)
            if row is not None:
                return row
        try:
            return self.create({"name": name, "color": color})
        except Conflict:
            row = self.get(self.s.r.hget(self.k.label_names(), name) or "")
            assert row is not None
            return row
