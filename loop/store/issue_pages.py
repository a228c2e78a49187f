"""Issue pages: ``GET /api/issues`` and every other issue list, one ``issue_list.lua`` call each.

The script walks the status/type/priority bitmaps and the project/parent/label zsets that
:mod:`loop.store.issues` keeps, in creation order with an exact total, never a scan of issue
hashes. :class:`IssuePages` is composed by :class:`~loop.store.issues.Issues`, whose ``list`` and
``list_wire`` are these.
"""

from __future__ import annotations

import builtins
import itertools
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from loop import models
from loop.keys import ID_WIDTH
from loop.models import ISSUE_FIELDS, Row
from loop.redis_commands import Value
from loop.tunables import LIST_BLOCK_BYTES, LIST_HINTS_MAX

if TYPE_CHECKING:
    from loop.store.base import RedisStore

LIST_SCRIPT = "issue_list"
#: Live issues are counted per project and these fields (P:counts:project_<fields>): the exact
#: totals of lists filtered by a project and exactly these fields.
COUNTED = (("status",), ("type",), ("status", "type"))
FILTERS = ("status", "type", "priority", "projectId", "parentId", "labelId")


class IssuePages:
    """Pages of live issues by filter, as rows or already-encoded wire rows."""

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        #: GET /api/issues query -> the ids of its page last time (:meth:`list_wire`'s hint).
        self._hints: dict[tuple[Any, ...], builtins.list[str]] = {}

    def list(  # noqa: A003
        self, filters: Mapping[str, Any], limit: int, offset: int) -> tuple[builtins.list[Row], int]:
        """Live issues matching every filter, creation order, one page plus the exact total.

        ``filters`` keys: status/type (lists, OR-ed), projectId, labelId, priority, parentId.
        """
        ids, total, _ = self._page(filters, limit, offset, ())
        return self.s.get_rows("issue", ISSUE_FIELDS, ids), total

    def list_wire(self, filters: Mapping[str, Any], limit: int, offset: int,
                  ) -> tuple[builtins.list[orjson.Fragment], int]:
        """:meth:`list` in wire form, each row already encoded (``GET /api/issues``; the
        response embeds them: ``models.wire_fragments``).

        One round trip when the page holds the same issues as the last time this process served
        the same query: the list script is handed those rows' keys as a hint and, when its page
        matches, reads them in the same call (fresh, like any read: the hint is only which keys)."""
        query = (tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items())), limit, offset)
        ids, total, rows = self._page(filters, limit, offset, self._hints.get(query, ()))
        if len(self._hints) >= LIST_HINTS_MAX:
            self._hints.clear()
        self._hints[query] = ids
        if rows is None:
            return self.s.wire_fragments("issue", ISSUE_FIELDS, ids), total
        return models.wire_fragments(ISSUE_FIELDS, rows), total

    def _page(self, filters: Mapping[str, Any], limit: int, offset: int, hint: Sequence[str],
              ) -> tuple[builtins.list[str], int, builtins.list[str] | None]:
        """The page's ids, the total, and the page's rows encoded (``rows_read.lua`` "json") when
        ``hint`` (ids) turned out to be the page's ids, else ``None``."""
        k = self.k
        groups: list[list[str]] = []
        for name in ("status", "type"):
            if filters.get(name):
                groups.append([k.issue_bits(name, v) for v in filters[name]])
        if filters.get("priority") is not None:
            groups.append([k.issue_bits("priority", str(filters["priority"]))])
        zsets = [k.issue_index(name, str(filters[field]))
                 for name, field in (("project", "projectId"), ("parent", "parentId"), ("label", "labelId"))
                 if filters.get(field) is not None]
        if zsets and not groups and len(zsets) == 1:
            return (*self.s.page_ids(zsets[0], limit, offset), None)
        if not groups and not zsets:
            groups.append([k.issue_bits()])
        # Project + statuses (the usual "what is open in this project"), + types, or + both: the
        # per-project counts give the total, so the script stops walking the project once the
        # page is full.
        used = {n for n in FILTERS if filters.get(n) is not None and filters.get(n) != []}
        by = next((c for c in COUNTED if used == {"projectId", *c}), None)
        counted = ["|".join((filters["projectId"], *vs)) for vs in itertools.product(*(filters[f] for f in by))] if by else []
        token = secrets.token_hex(8)
        keys = [k.issue_ids(), k.tmp(f"{token}:a"), k.tmp(f"{token}:b"), *(key for g in groups for key in g), *zsets]
        args: list[Value] = [offset, limit, ID_WIDTH, LIST_BLOCK_BYTES, len(groups), *(len(g) for g in groups), len(zsets),
                len(counted), *counted]
        if by:
            keys.append(k.counts("_".join(("project", *by))))
        if hint:
            head = k.row_prefix("issue")
            keys.extend(head + i for i in hint)
            args.extend((len(hint), head))
        out = self.s.scripts[LIST_SCRIPT](keys=keys, args=args)
        total, n = int(out[0]), int(out[1])
        return (out[2:len(out) - n], total, out[len(out) - n:]) if n else (out[2:], total, None)
