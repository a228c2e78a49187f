"""The upkeep of an issue's secondary indexes (loop/store/issues.py writes through it).

Status, type and priority (a handful of values each) and liveness are bitmaps with bit
``<number>`` set; project and parent are zsets scored by the number; per project, live issues are
counted per status, type and both (:data:`loop.store.issue_pages.COUNTED`). One rule says which of
them a live issue is in (:meth:`IssueIndexes.of`): a new issue's one ``issue_create.lua`` writes
those, and every later write moves the issue out of the ones it left and into the ones it joined.
"""

from __future__ import annotations

from typing import NamedTuple

from loop import models
from loop.keys import ID_WIDTH, Keys
from loop.models import ISSUE_FIELDS, Row
from loop.scripts import eval_body
from loop.store.issue_pages import COUNTED
from loop.store.types import Pipe

#: Issue fields indexed by bitmaps (field name in the key -> row field).
BITMAPS = {"status": "status", "type": "type", "priority": "priority"}
#: Issue fields indexed by zsets.
INDEXED = {"project": "projectId", "parent": "parentId"}
#: A new issue's row and indexes, queued in its MULTI (``loop/lua/issue_create.lua``).
CREATE_SCRIPT = "issue_create"


class Indexes(NamedTuple):
    """The secondary indexes a live issue is in (:meth:`IssueIndexes.of`)."""

    #: Bitmaps with its bit ``<number>`` set: every live issue's, then status, type, priority.
    bitmaps: list[str]
    #: Zsets holding its id scored by its number: project, parent.
    zsets: list[str]
    #: ``(counts hash, field)`` pairs counting it: one per :data:`COUNTED`, with a project only.
    counted: list[tuple[str, str]]


#: A deleted (or not yet existing) issue's indexes.
NO_INDEXES = Indexes([], [], [])


class IssueIndexes:
    """Stages index writes on an issue write's MULTI pipeline."""

    def __init__(self, keys: Keys) -> None:
        self.k = keys

    def stage_new(self, pipe: Pipe, issue: Row) -> None:
        """Queue the row and indexes of new live ``issue`` as one ``issue_create.lua``: what
        :meth:`reindex` (from no issue) and ``write_row`` would queue as 8 or more commands."""
        k, iid, num = self.k, issue["id"], issue["number"]
        assert issue["deletedAt"] is None  # a new issue is live
        bitmaps, zsets, counted = self.of(issue)
        row = models.encode(ISSUE_FIELDS, issue)
        eval_body(pipe, CREATE_SCRIPT, [k.issue(iid), k.issue_ids(), k.issue_roots(), *bitmaps, *zsets,
                                        *(key for key, _ in counted)],
                  iid, num, (num - 1) * ID_WIDTH, issue["updatedAt"], issue["parentId"] or "",
                  len(bitmaps), len(zsets), len(row), *(x for item in row.items() for x in item),
                  *(field for _, field in counted))
        if issue["status"] == "done" and issue["completedAt"] is not None:
            pipe.zadd(k.issues_completed(), {iid: issue["completedAt"]})

    def of(self, issue: Row) -> Indexes:
        """The bitmaps, zsets and per-project counts ``issue`` is in while live: what
        :meth:`stage_new` writes and what :meth:`reindex` moves the issue out of and into."""
        k = self.k
        return Indexes(
            [k.issue_bits(), *(k.issue_bits(name, str(issue[field]))
                               for name, field in BITMAPS.items() if issue[field] is not None)],
            [k.issue_index(name, str(issue[field])) for name, field in INDEXED.items() if issue[field] is not None],
            [(k.counts("_".join(("project", *fields))), "|".join((issue["projectId"], *(issue[f] for f in fields))))
             for fields in COUNTED] if issue["projectId"] else [])

    def reindex(self, pipe: Pipe, old: Row | None, new: Row) -> None:
        """Move the issue between secondary indexes for whatever changed: out of those ``old``
        was in (when live) and ``new`` is not, into those ``new`` is in (when live) and ``old`` was
        not. An index in both is left alone: a write that changes no indexed field, no command."""
        iid, num = new["id"], new["number"]
        was_live = old is not None and old["deletedAt"] is None
        is_live = new["deletedAt"] is None
        if old is None:  # a new issue: its number names it from now on
            pipe.setrange(self.k.issue_ids(), (num - 1) * ID_WIDTH, iid)
        before = self.of(old) if was_live and old is not None else NO_INDEXES
        after = self.of(new) if is_live else NO_INDEXES
        for key in before.bitmaps:
            if key not in after.bitmaps:
                pipe.setbit(key, num, 0)
        for key in after.bitmaps:
            if key not in before.bitmaps:
                pipe.setbit(key, num, 1)
        for key in before.zsets:
            if key not in after.zsets:
                pipe.zrem(key, iid)
        for key in after.zsets:
            if key not in before.zsets:
                pipe.zadd(key, {iid: num})
        for counts, field in before.counted:  # P:counts:project_status, project_type, project_status_type
            if (counts, field) not in after.counted:
                pipe.hincrby(counts, field, -1)
        for counts, field in after.counted:
            if (counts, field) not in before.counted:
                pipe.hincrby(counts, field, 1)
        self._activity(pipe, old if was_live else None, new if is_live else None)

    def _activity(self, pipe: Pipe, old: Row | None, new: Row | None) -> None:
        """The dashboard's indexes; ``old``/``new`` are ``None`` when not live."""
        iid: str = (new or old or {}).get("id", "")  # "": neither is live, nothing is written
        done, roots = self.k.issues_completed(), self.k.issue_roots()
        before = old["completedAt"] if old and old["status"] == "done" else None
        after = new["completedAt"] if new and new["status"] == "done" else None
        if after is not None and after != before:
            pipe.zadd(done, {iid: after})
        elif after is None and before is not None:
            pipe.zrem(done, iid)
        if new is not None and not new["parentId"]:
            pipe.zadd(roots, {iid: new["updatedAt"]}, gt=True)
        elif old is not None and not old["parentId"]:
            pipe.zrem(roots, iid)
        if new is not None and new["parentId"]:
            # A child's write is activity of its chain: raise the root's score, never add it.
            pipe.zadd(roots, {new["parentId"]: new["updatedAt"]}, xx=True, gt=True)
