"""Goals: measurable targets, optionally tied to a project."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loop.models import GOAL_FIELDS, Row
from loop.store.rows import RowService


class Goals(RowService):
    kind = "goal"
    index_name = "goals"
    fields = GOAL_FIELDS
    not_found = "Goal not found"
    status_indexed = True  # GET /api/goals?status=

    def create(self, data: Mapping[str, Any]) -> Row:
        return super().create({"status": "active", **data})
