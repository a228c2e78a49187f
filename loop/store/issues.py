"""Issues: the unit of work. Hash per issue plus secondary indexes.

Status, type and priority (a handful of values each) and liveness are bitmaps with bit
``<number>`` set: a bit per issue instead of a ~120-byte zset entry. Project, parent and label
(many values, each with few issues) are zsets scored by the number. Either way lists come
back in creation order with an exact total, from ``issue_list.lua``, never a scan of issue
hashes (the page reads: :mod:`loop.store.issue_pages`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from loop import models
from loop.errors import BusinessRuleError, LoopError, NotFound, ValidationError
from loop.ids import new_id
from loop.keys import ID_WIDTH
from loop.models import ISSUE_FIELDS, OUTCOME_TYPES, RESOLVED_STATUSES, Row
from loop.scripts import STEP_COMMANDS, STEP_PARTS, NotComposable, Stager, composed, watch_eval
from loop.store.issue_indexes import IssueIndexes
from loop.store.issue_pages import IssuePages
from loop.store.one_command import (
    FENCED_READ,
    NEW_PARTS,
    NEW_SCRIPT,
    UPDATE_SCRIPT,
    Expected,
    Read,
    Unexpected,
)
from loop.store.types import ATTEMPT_BLOCKING, ATTEMPT_SESSION, PLAIN, Fence, Pipe, WriteIntent, is_id
from loop.tunables import CHILDREN_LIMIT, MAX_TX_RETRIES

if TYPE_CHECKING:
    from loop.store.base import RedisStore

PARENT_NOT_FOUND = "Parent issue not found"
HIERARCHY_LIMIT = "Cannot create a child of an issue that already has a parent (1-level hierarchy limit)"
OUTCOME_TYPE = "outcome is only accepted on monitors and hypotheses"


def check_outcome(issue_type: str | None, outcome: str | None) -> None:
    """400 naming ``outcome`` when one is set on an issue type that takes none."""
    if outcome is not None and issue_type not in OUTCOME_TYPES:
        raise ValidationError(f"Invalid request: {OUTCOME_TYPE}", {"outcome": [OUTCOME_TYPE]})

Stage = Callable[[Pipe, Row], object]  # what it returns is ignored


class Issues:
    """Issue CRUD, listing, label links."""

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        #: The reads fenced writes are expected to make (a claim of this process puts them).
        self.expected = Expected()
        #: The page reads (``list``/``list_wire`` delegate to it), with their per-query hints.
        self.pages = IssuePages(store)
        #: The secondary indexes' upkeep: a new issue's, and each write's moves.
        self.indexes = IssueIndexes(store.keys)

    # ------------------------------------------------------------------ reads
    def get(self, issue_id: str) -> Row | None:
        return self.s.get_row("issue", ISSUE_FIELDS, issue_id)

    def get_live(self, issue_id: str) -> Row:
        return self.s.live_row("issue", ISSUE_FIELDS, issue_id, "Issue not found")

    def id_by_number(self, number: int) -> str | None:
        """The id of issue ``#number`` from the fixed-width number index: one GETRANGE."""
        if number < 1:
            return None
        raw = self.s.r.getrange(self.k.issue_ids(), (number - 1) * ID_WIDTH, number * ID_WIDTH - 1)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return text if len(text) == ID_WIDTH and "\0" not in text else None

    def get_many(self, ids: list[str]) -> list[Row]:
        return self.s.get_rows("issue", ISSUE_FIELDS, ids)

    def detail(self, issue_id: str) -> Row:
        """The issue with ``parent``, ``children`` (the CHILDREN_LIMIT most recent, creation order;
        ``childrenTotal`` counts them all), ``labels``, outgoing ``relations`` and
        ``incomingRelations`` (rows of other issues naming this one as ``relatedIssueId``)."""
        issue = self.get_live(issue_id)
        children = self.k.issue_index("parent", issue_id)
        pipe = self.s.r.pipeline(transaction=False)
        pipe.zrevrange(children, 0, CHILDREN_LIMIT - 1)
        pipe.zcard(children)
        pipe.smembers(self.k.issue_labels(issue_id))
        pipe.zrange(self.k.issue_relations(issue_id), 0, -1)
        pipe.zrange(self.k.issue_relations_in(issue_id), 0, -1)
        recent, children_total, label_ids, relation_ids, incoming_ids = pipe.execute()
        child_ids = recent[::-1]
        parent = None
        if issue["parentId"]:
            p = self.get(issue["parentId"])
            parent = p if p and p["deletedAt"] is None else None
        labels = [
            {"id": lb["id"], "name": lb["name"], "color": lb["color"]}
            for lb in self.s.get_rows("label", models.LABEL_FIELDS, sorted(label_ids))
            if lb["deletedAt"] is None
        ]
        return {
            **self.wire(issue),
            "parent": self.wire(parent) if parent else None,
            "children": [self.wire(c) for c in self.get_many(child_ids)],
            "childrenTotal": int(children_total),
            "labels": labels,
            "relations": [
                models.wire(models.RELATION_FIELDS, r)
                for r in self.s.get_rows("relation", models.RELATION_FIELDS, relation_ids)
            ],
            "incomingRelations": [
                models.wire(models.RELATION_FIELDS, r)
                for r in self.s.get_rows("relation", models.RELATION_FIELDS, incoming_ids)
            ],
        }

    @staticmethod
    def wire(issue: Row) -> Row:
        return models.wire(ISSUE_FIELDS, issue)

    def list(  # noqa: A003
        self, filters: Mapping[str, Any], limit: int, offset: int) -> tuple[list[Row], int]:
        """:meth:`IssuePages.list <loop.store.issue_pages.IssuePages.list>`."""
        return self.pages.list(filters, limit, offset)

    def list_wire(self, filters: Mapping[str, Any], limit: int, offset: int,
                  ) -> tuple[builtins.list[orjson.Fragment], int]:
        """:meth:`IssuePages.list_wire <loop.store.issue_pages.IssuePages.list_wire>`."""
        return self.pages.list_wire(filters, limit, offset)

    # ------------------------------------------------------------------ writes
    @staticmethod
    def _live_in_tx(pipe: Pipe, key: str) -> Row:
        """The issue at ``key`` read inside a WATCH transaction, or NotFound if gone or deleted."""
        return Issues._live(pipe.hgetall(key))

    @staticmethod
    def _live(raw: Mapping[str, str]) -> Row:
        """The issue of HGETALL reply ``raw``, or NotFound if empty (gone) or deleted."""
        row = models.decode(ISSUE_FIELDS, raw) if raw else None
        if row is None or row["deletedAt"] is not None:
            raise NotFound("Issue not found")
        return row

    def _check_parent(self, parent_id: str, child_id: str | None, pipe: Pipe | None = None) -> None:
        """The hierarchy rule. Given the transaction's ``pipe``, the parent is read under
        WATCH, so a parent deleted or given a parent meanwhile aborts the write (and a retry
        sees it)."""
        if child_id is not None and parent_id == child_id:
            raise BusinessRuleError("An issue cannot be its own parent")
        if pipe is not None and is_id(parent_id):
            pipe.watch(self.k.issue(parent_id))
        parent = self.s.get_row("issue", ISSUE_FIELDS, parent_id, client=pipe)
        if parent is None or parent["deletedAt"] is not None:
            raise BusinessRuleError(PARENT_NOT_FOUND)
        if parent["parentId"]:
            raise BusinessRuleError(HIERARCHY_LIMIT)

    def _check_labels(self, label_ids: builtins.list[str]) -> None:
        rows = self.s.get_rows("label", models.LABEL_FIELDS, label_ids)
        live = {r["id"] for r in rows if r["deletedAt"] is None}
        missing = [lid for lid in label_ids if lid not in live]
        if missing:
            raise BusinessRuleError(f"Label not found: {missing[0]}")

    def create(self, data: Mapping[str, Any], extra: Stage | None = None, intent: WriteIntent = PLAIN) -> Row:
        """Create an issue from validated ``data``; ``extra`` queues more writes in the same MULTI;
        ``intent`` is handed to the issue hooks (e.g. a webhook delivery's guard). One command
        (:meth:`create_one`) when the transaction is made of scripts alone."""
        check_outcome(data.get("type"), data.get("outcome"))
        if data.get("parentId"):
            self._check_parent(data["parentId"], None)
        label_ids = list(dict.fromkeys(data.get("labelIds") or []))
        if label_ids:
            self._check_labels(label_ids)
        if extra is None and not label_ids and not data.get("parentId"):  # those need the transaction
            made = self.create_one(data, intent)
            if made is not None:
                return made
        issue = self.new_row(data)

        def tx(pipe: Pipe) -> None:
            states = self.prepare_create(pipe, issue, intent)
            pipe.multi()
            self.stage_create(pipe, issue, states, label_ids)
            if extra is not None:
                extra(pipe, issue)

        self.s.transact(tx)
        return issue

    def create_one(self, data: Mapping[str, Any], intent: WriteIntent = PLAIN,
                   expect: Sequence[tuple[str, str]] = (), known: Mapping[object, object] | None = None,
                   ) -> Row | None:
        """Create the issue in ONE command (``issue_new.lua``) when its transaction is made of
        scripts alone (no hook reads under WATCH, no plain command to queue); ``None`` (nothing
        written) when it is not: :meth:`create`'s transaction writes it.

        The transaction is staged as usual, by the same code, on a MULTI pipeline that is never
        sent (:class:`loop.scripts.Stager`); its queued scripts become the parts the script runs
        after drawing the number, so the one command writes exactly what that MULTI would have.
        ``expect``: ``(key, value)`` pairs the script checks first (``''``: the key is unset; a
        fingerprint's group, a delivery's guard), raising :class:`Unexpected` at the first that
        fails; ``known``: the reads the hooks would make, answered by those checks
        (``Pipe.attempt_reads``)."""
        issue = self.new_row(data, number=0)  # a placeholder: the script draws the number
        stager = Stager(dict(known or {}))
        pipe = cast(Pipe, stager)
        try:
            states = self.prepare_create(pipe, issue, intent)
            stager.multi()
            self.stage_create(pipe, issue, states)
        except NotComposable:  # a hook reads under WATCH: the transaction depends on it
            return None
        parts = stager.parts(NEW_PARTS)
        if parts is None:
            return None
        part_keys, part_args = composed(parts)
        keys = [self.k.issue_seq(), *(key for key, _ in expect), *part_keys]
        args = [len(expect), *(value for _, value in expect), ID_WIDTH, *part_args]
        out = self.s.scripts[NEW_SCRIPT](keys=keys, args=args)
        if not int(out[0]):
            raise Unexpected(int(out[1]) - 1, out[2] if len(out) > 2 else None)
        issue["number"] = int(out[1])
        return issue

    def new_row(self, data: Mapping[str, Any], number: int | None = None) -> Row:
        """The row of a new issue from validated ``data`` (draws its number unless given one drawn
        from ``issue_seq`` already, e.g. by ``signal_open.lua``)."""
        now = self.s.now()
        issue: Row = dict.fromkeys(ISSUE_FIELDS)
        issue.update({k: v for k, v in data.items() if k in ISSUE_FIELDS})
        issue.update(
            id=new_id(),
            number=number if number is not None else int(self.s.r.incr(self.k.issue_seq())),
            status=data.get("status") or "triage",
            priority=data.get("priority") or 0,
            agentSessionId=None, agentSummary=None, commits=None, pullRequests=None,
            completedAt=now if data.get("status") == "done" else None,
            createdAt=now, updatedAt=now, deletedAt=None,
        )
        return issue

    def prepare_create(self, pipe: Pipe, issue: Row, intent: WriteIntent = PLAIN) -> builtins.list[Any]:
        """The WATCH half of creating ``issue`` inside a transaction: checks, then the hooks' reads."""
        if issue["parentId"]:
            self._check_parent(issue["parentId"], None, pipe)
        return [h.prepare(pipe, None, issue, intent) for h in self.s.issue_hooks]

    def stage_create(self, pipe: Pipe, issue: Row, states: builtins.list[Any],
                     label_ids: Sequence[str] = ()) -> None:
        """The MULTI half: the issue's hash, indexes, labels and the hooks' writes."""
        self.indexes.stage_new(pipe, issue)
        for lid in label_ids:
            pipe.sadd(self.k.issue_labels(issue["id"]), lid)
            pipe.zadd(self.k.issue_index("label", lid), {issue["id"]: issue["number"]})
        for h, st in zip(self.s.issue_hooks, states, strict=True):
            h.stage(pipe, None, issue, st)

    def update(
        self,
        issue_id: str,
        changes: Mapping[str, Any],
        check: Callable[[Pipe, Row], None] | None = None,
        intent: WriteIntent = PLAIN,
    ) -> Row:
        """Apply validated ``changes``; ``check(pipe, old)`` may veto (e.g. a stale claim token);
        ``intent`` is handed to the issue hooks (e.g. the session a requeue closes)."""

        def proceed(pipe: Pipe, old: Row) -> bool:
            if check is not None:
                check(pipe, old)
            return True

        session = check.session_id if isinstance(check, Fence) else None
        # A write that resolves the issue reads the issues it blocks (the dispatch hook): expected none.
        read = self.expected.take(issue_id, session, blocking=changes.get("status") in RESOLVED_STATUSES)
        if read is not None and session is not None and not changes.get("parentId"):
            made = self.update_one(issue_id, changes, check, intent, session, read)  # (a parent needs WATCH)
            if made is not None:
                return made
        new = self.update_if(issue_id, changes, proceed, intent, session)
        assert new is not None  # proceed never declines
        return new

    def update_one(self, issue_id: str, changes: Mapping[str, Any], check: Callable[[Pipe, Row], None] | None,
                   intent: WriteIntent, session: str, read: Read) -> Row | None:
        """:meth:`update` in ONE command, from a ``read`` :attr:`expected` from a claim of this process
        (the issue, its active session and the token's ``session``; for a write that resolves the
        issue, the issues it blocks): the write is staged from it as usual, by the same code, on a
        :class:`~loop.scripts.Stager`, and ``issue_update.lua`` applies it only if that is still what
        Redis holds; else it answers what Redis holds and the write is staged again from that.
        ``None`` (nothing written) when the writes are not made of scripts and single-key commands
        alone (a hook reads under WATCH): the transaction (:meth:`update_if`) writes it."""
        read_keys = [self.k.issue(issue_id), self.k.dispatch_state(issue_id), self.k.session(session)]
        if read[4] is not None:
            read_keys.append(self.k.dispatch_blocking(issue_id))
        for attempt in range(MAX_TX_RETRIES):
            issue, named, held, digest, blocking = read
            known = self._session_reads(issue_id, session, named, held)
            if blocking is not None:
                known[(ATTEMPT_BLOCKING, issue_id)] = sorted(blocking)
            stager = Stager(known)
            pipe = cast(Pipe, stager)
            try:
                old = self._live(models.pairs(issue))
                check_outcome(changes.get("type") or old["type"], changes.get("outcome", old["outcome"]))
                if check is not None:
                    check(pipe, old)
                new, states = self.prepare_update(pipe, old, changes, intent)
                stager.multi()
                self.stage_update(pipe, old, new, states)
            except NotComposable:  # a hook reads under WATCH: the transaction depends on it
                return None
            except LoopError:
                if attempt == 0:  # refused by the prediction (a lease renewed since?): the transaction reads
                    return None
                raise  # refused by what Redis holds
            parts = stager.parts(STEP_PARTS, STEP_COMMANDS)
            if parts is None:
                return None
            part_keys, part_args = composed(parts)
            out = self.s.scripts[UPDATE_SCRIPT](keys=[*part_keys, *read_keys],
                                                args=[*part_args, len(read_keys), digest])
            if int(out[0]):
                return new
            # Changed meanwhile: staged again from what is there now.
            read = (out[1], out[2], out[3], out[4], out[5] if blocking is not None else None)
        return None  # lost every race: the transaction's own retries take it

    def update_if(
        self,
        issue_id: str,
        changes: Mapping[str, Any],
        proceed: Callable[[Pipe, Row], bool],
        intent: WriteIntent = PLAIN,
        session: str | None = None,
    ) -> Row | None:
        """:meth:`update`, unless ``proceed(pipe, old)`` (run under WATCH, it may watch more keys)
        returns ``False``: then nothing is written and the answer is ``None``.

        ``session``: the claim session a fenced write expects the issue to hold; it is watched and
        read with the issue and its dispatch state in one command (``issue_fenced_read.lua``), so
        the fence and the dispatch hook find it in ``pipe.attempt_reads``."""
        if not is_id(issue_id):
            raise NotFound("Issue not found")
        key = self.k.issue(issue_id)
        if changes.get("parentId"):
            self._check_parent(changes["parentId"], issue_id)
        if session is not None and not is_id(session):
            session = None

        def tx(pipe: Pipe) -> Row | None:
            if session is None:
                pipe.watch(key)
                old = self._live_in_tx(pipe, key)
            else:
                old = self._fenced_read(pipe, issue_id, session)
            check_outcome(changes.get("type") or old["type"], changes.get("outcome", old["outcome"]))
            if changes.get("parentId"):
                # Watched: a child created under this issue meanwhile aborts the write.
                children = self.k.issue_index("parent", issue_id)
                pipe.watch(children)
                if pipe.exists(children):
                    raise BusinessRuleError(
                        "Cannot give a parent to an issue that has children (1-level hierarchy limit)"
                    )
                self._check_parent(changes["parentId"], issue_id, pipe)
            if not proceed(pipe, old):
                return None
            new, states = self.prepare_update(pipe, old, changes, intent)
            pipe.multi()
            self.stage_update(pipe, old, new, states)
            return new

        return self.s.transact(tx)  # tx WATCHes

    def _fenced_read(self, pipe: Pipe, issue_id: str, session: str) -> Row:
        """:meth:`_live_in_tx` of the issue, keeping its active session in ``pipe.attempt_reads``
        when it is ``session``. WATCHes all three keys and reads them in one round trip
        (``watch_eval``), so a change to any of them fails the EXEC."""
        keys = [self.k.issue(issue_id), self.k.dispatch_state(issue_id), self.k.session(session)]
        issue, named, held = watch_eval(pipe, keys, FENCED_READ, keys)
        row = self._live(models.pairs(issue))
        pipe.attempt_reads.update(self._session_reads(issue_id, session, named, held))
        return row

    @staticmethod
    def _session_reads(issue_id: str, session: str | None, named: str | None, held: Any) -> dict[object, object]:
        """``Pipe.attempt_reads`` of ``issue_fenced_read.lua``'s answer: the issue's active session when
        it holds none or the one read (``session``); else nothing, and the hooks read it themselves."""
        if not named:
            return {(ATTEMPT_SESSION, issue_id): (None, {})}
        if named == session:
            return {(ATTEMPT_SESSION, issue_id): (named, models.pairs(held))}
        return {}

    def prepare_update(self, pipe: Pipe, old: Row, changes: Mapping[str, Any],
                       intent: WriteIntent = PLAIN) -> tuple[Row, builtins.list[Any]]:
        """The WATCH half of an update of ``old`` (read under WATCH): the new row and the hooks' state."""
        new = self._apply(old, changes)
        return new, [h.prepare(pipe, old, new, intent) for h in self.s.issue_hooks]

    def stage_update(self, pipe: Pipe, old: Row, new: Row, states: builtins.list[Any]) -> None:
        """The MULTI half of :meth:`prepare_update`."""
        self._stage_update(pipe, old, new)
        for h, st in zip(self.s.issue_hooks, states, strict=True):
            h.stage(pipe, old, new, st)

    def _apply(self, old: Row, changes: Mapping[str, Any]) -> Row:
        now = self.s.now()
        new = {**old, **{k: v for k, v in changes.items() if k in ISSUE_FIELDS}}
        if new["status"] == "done" and old["status"] != "done":
            new["completedAt"] = now
        elif new["status"] != "done":
            new["completedAt"] = None
        new["updatedAt"] = now
        return new

    def _stage_update(self, pipe: Pipe, old: Row, new: Row) -> None:
        diff = {k: v for k, v in new.items() if old.get(k) != v}
        if diff:
            self.s.write_row(pipe, "issue", ISSUE_FIELDS, new["id"], diff)
        if "description" in diff:
            # An older Loop may have stored the description in pieces (models.LEGACY_PIECE_SEP).
            pipe.hdel(self.k.issue(new["id"]), *models.legacy_piece_names("description"))
        self.indexes.reindex(pipe, old, new)

    def delete(self, issue_id: str) -> Row:
        """Soft delete: keep the hash, drop the issue from every index."""
        if not is_id(issue_id):
            raise NotFound("Issue not found")
        key = self.k.issue(issue_id)

        def tx(pipe: Pipe) -> Row:
            old = self._live_in_tx(pipe, key)
            # Watched: a label attached meanwhile aborts the delete, and the retry unindexes it too.
            pipe.watch(self.k.issue_labels(issue_id))
            labels = pipe.smembers(self.k.issue_labels(issue_id))
            new = {**old, "deletedAt": self.s.now(), "updatedAt": self.s.now()}
            states = [h.prepare(pipe, old, new, PLAIN) for h in self.s.issue_hooks]
            pipe.multi()
            self._stage_update(pipe, old, new)
            for lid in labels:
                pipe.zrem(self.k.issue_index("label", lid), issue_id)
            pipe.zadd(self.k.retention("issues"), {issue_id: new["deletedAt"]})  # purged after retention
            for h, st in zip(self.s.issue_hooks, states, strict=True):
                h.stage(pipe, old, new, st)
            return new

        return self.s.transact(tx, key)

    # ------------------------------------------------------------------ labels
    def attach_label(self, issue_id: str, label_id: str) -> None:
        self.get_live(issue_id)
        self._check_labels([label_id])
        key = self.k.issue(issue_id)

        def tx(pipe: Pipe) -> None:
            # Re-read under WATCH: an issue deleted meanwhile must not re-enter the label index.
            issue = self._live_in_tx(pipe, key)
            pipe.multi()
            pipe.sadd(self.k.issue_labels(issue_id), label_id)
            pipe.zadd(self.k.issue_index("label", label_id), {issue_id: issue["number"]})

        self.s.transact(tx, key)

    def detach_label(self, issue_id: str, label_id: str) -> None:
        self.get_live(issue_id)
        pipe = self.s.r.pipeline(transaction=True)
        pipe.srem(self.k.issue_labels(issue_id), label_id)
        pipe.zrem(self.k.issue_index("label", label_id), issue_id)
        removed, _ = pipe.execute()
        if not removed:
            raise NotFound("Label is not attached to this issue")

    def label_names(self, issue_id: str) -> builtins.list[str]:
        """Names of every label linked to the issue (deleted labels included, as the reference)."""
        ids = sorted(self.s.r.smembers(self.k.issue_labels(issue_id)))
        return [lb["name"] for lb in self.s.get_rows("label", models.LABEL_FIELDS, ids)]

    def counts_by_project(self, project_id: str) -> dict[str, int]:
        """``{status: n}`` of live issues in a project, statuses with at least one issue only."""
        fields = [f"{project_id}|{s}" for s in models.ISSUE_STATUSES]
        values = self.s.r.hmget(self.k.counts("project_status"), fields)
        return {s: int(v) for s, v in zip(models.ISSUE_STATUSES, values, strict=True) if v and int(v) > 0}
