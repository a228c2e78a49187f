"""``loop.dispatch``: claim, leases, sessions, fencing and the queue preview."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from loop import models
from loop.clock import iso
from loop.dispatch import scoring, sessions
from loop.dispatch.claim import Claim, Claimer, LeaseDue
from loop.dispatch.goals import GoalBonus
from loop.dispatch.index import Index
from loop.errors import Conflict, Forbidden, LoopError, NotFound
from loop.models import ISSUE_FIELDS, Row
from loop.store.types import Fence, Pipe, SessionClose, WriteIntent
from loop.tunables import CLAIM_SWEEP, SCHEDULE_MAX_BATCHES, SWEEP_BATCH

if TYPE_CHECKING:
    from loop.prompts.service import PromptService
    from loop.store.base import RedisStore

log = logging.getLogger("loop.dispatch")

STALE_TOKEN = "Stale claim token: this issue's claim was released, expired or taken over"
LEASE_EXPIRED = "The claim's lease has expired; the issue went back to the queue"
ISSUE_BRIEF = ("id", "number", "title", "type", "priority", "status")


class RenderFailed(LoopError):
    """The claimed issue's prompt could not be rendered; the claim was given back (HTTP 500)."""


#: What ``_requeue``'s check found under WATCH: act (requeue the issue), retry (the session changed
#: under us: heartbeat, another sweeper), or drift (the session is active but its issue is no longer
#: held by it: close the session alone).
Verdict = Literal["act", "retry", "drift"]


class Dispatch:
    """``prompts``: the engine that renders a claim's prompt (``None``: claims carry no prompt)."""

    def __init__(self, store: RedisStore, prompts: PromptService | None) -> None:
        self.s = store
        self.prompts = prompts
        self.k = store.keys
        self.index = Index(store)
        self.goals = GoalBonus(store)
        self.claimer = Claimer(store)
        self.index.on_enter = self.claimer.entered  # a re-opened issue: a candidate of the next claim
        self.scheduler = self.claimer.scheduler

    # ------------------------------------------------------------------ claim
    def next(self, agent: str, project_id: str | None = None) -> dict[str, Any] | None:
        """Claim the best eligible issue and render its prompt; ``None`` when nothing is eligible."""
        # The prompt engine reads the whole issue; without it the brief fields are the answer.
        full = self.prompts is not None
        try:
            claim = self.claimer.claim(agent, project_id, check_due=True, full=full)
        except LeaseDue:
            self.expire_due(CLAIM_SWEEP)
            claim = self.claimer.claim(agent, project_id, full=full)
        if claim is None:
            return None
        prompt, meta = self._render(claim)
        if claim.written is not None:
            # The claim's fenced write (a re-open, a completion) stages from this instead of reading.
            issue_hash, session_hash = claim.written
            if meta is not None:  # _render recorded the version on the session
                session_hash = [*session_hash, "versionId", str(meta["versionId"])]
            self.s.issues.expected.put(claim.issue["id"], issue_hash, claim.session_id, session_hash)
        issue = {f: claim.issue[f] for f in ISSUE_BRIEF}
        ticket = {"sessionId": claim.session_id, "token": claim.token, "expiresAt": iso(claim.expires_at)}
        body = {"issue": issue, "prompt": prompt, "meta": meta, "claim": ticket}
        return {**body, "data": dict(body)}

    def claim(self, agent: str, project_id: str | None = None) -> Claim | None:
        """The bare claim (no prompt): used by tests and benchmarks."""
        return self.claimer.claim(agent, project_id)

    def _render(self, claim: Claim) -> tuple[str | None, dict[str, Any] | None]:
        prompts = self.prompts
        if prompts is None:
            return None, None
        try:
            # record=True: the engine also writes the session's versionId and the version's
            # dispatched counter (sessions.stage_version), in the command that counts the use.
            prompt, meta = prompts.render_for_dispatch(
                claim.issue, {"sessionId": claim.session_id, "expiresAt": claim.expires_at}, record=True)
        except LoopError as exc:
            self._give_back(claim.session_id, f"prompt rendering failed: {exc.message}")
            raise RenderFailed(
                f"Could not render the prompt for issue #{claim.issue['number']}: {exc.message}. "
                "The issue was returned to the queue."
            ) from exc
        except Exception:
            self._give_back(claim.session_id, "prompt rendering failed: internal error")
            raise
        return prompt, meta

    def _give_back(self, session_id: str, reason: str) -> None:
        """Release a claim whose prompt could not be rendered, without a strike: the fault is the
        server's (a template, a Redis blip), not the issue's, so it must not push issues to parking.
        If even the release fails, the lease expiry requeues the issue later; the render error wins."""
        try:
            self._requeue(session_id, "released", reason)
        except Exception:
            log.exception("could not release session %s after a render failure", session_id)

    # ------------------------------------------------------------------ sessions
    def get_session(self, session_id: str) -> Row:
        raw = self.s.r.hgetall(self.k.session(session_id))
        if not raw:
            raise NotFound("Session not found")
        return sessions.decode(raw)

    def sessions_for_issue(self, issue_id: str) -> list[Row]:
        """Every session of the issue as wire dicts, oldest claim first."""
        rows, _ = self.list_sessions(issue_id, 0, -1)
        return rows

    def list_sessions(self, issue_id: str, offset: int, limit: int) -> tuple[list[Row], int]:
        key = self.k.issue_sessions(issue_id)
        pipe = self.s.r.pipeline(transaction=False)
        pipe.zrange(key, offset, offset + limit - 1 if limit > 0 else -1)
        pipe.zcard(key)
        ids, total = pipe.execute()
        reader = self.s.r.pipeline(transaction=False)
        for sid in ids:
            reader.hgetall(self.k.session(sid))
        return [sessions.wire(sessions.decode(raw)) for raw in reader.execute() if raw], int(total)

    def version_stats(self, version_id: str) -> dict[str, int]:
        return sessions.version_stats(self.s.r, self.k, version_id)

    def _authorize(self, session: dict[str, str], agent: str | None, token: str | None) -> None:
        if token is not None:
            if not sessions.token_matches(session, token):
                raise Conflict(STALE_TOKEN)
        elif agent != session.get("agentName"):
            raise Forbidden("Only the agent that holds the claim (or a request with its claim token) may do this")

    def heartbeat(self, session_id: str, agent: str | None, token: str | None) -> Row:
        """Extend an active lease by the configured lease length."""
        key = self.k.session(session_id)
        expired = False

        def tx(pipe: Pipe) -> None:
            nonlocal expired
            raw: dict[str, str] = pipe.hgetall(key)
            if not raw:
                raise NotFound("Session not found")
            self._authorize(raw, agent, token)
            if raw["status"] != "active":
                raise Conflict(f"The session is {raw['status']}, not active")
            now = self.s.now()
            if int(raw["expiresAt"]) <= now:
                expired = True
                return
            expires = now + self.s.settings.lease_seconds * 1000
            pipe.multi()
            pipe.hset(key, "expiresAt", expires)
            pipe.zadd(self.k.dispatch_leases(), {session_id: expires})

        self.s.transact(tx, key)
        if expired:
            self.expire(session_id)
            raise Conflict(LEASE_EXPIRED)
        return sessions.wire(self.get_session(session_id))

    def release(self, session_id: str, agent: str | None, token: str | None, reason: str | None = None,
                failed: bool = False) -> Row:
        """Give the issue back to the queue and close the session as released.

        ``failed``: the agent tried and failed, so the session closes as ``failed`` and counts as a
        strike exactly like an expiry (the N-strikes rule may park the issue instead of requeueing it).
        """
        session = self.s.r.hgetall(self.k.session(session_id))
        if not session:
            raise NotFound("Session not found")
        self._authorize(session, agent, token)
        if session["status"] != "active":
            raise Conflict(f"The session is {session['status']}, not active")
        if int(session["expiresAt"]) <= self.s.now():
            self.expire(session_id)
            raise Conflict(LEASE_EXPIRED)
        acted = self._requeue(session_id, "failed" if failed else "released", reason or None)
        row = self.get_session(session_id)
        if not acted:  # another request closed it between our read and our write
            raise Conflict(f"The session is {row['status']}, not active")
        return sessions.wire(row)

    # ------------------------------------------------------------------ leases
    def expire_due(self, limit: int = SWEEP_BATCH) -> int:
        """Requeue the issues of leases that have expired; returns how many were expired."""
        due = self.s.r.zrangebyscore(self.k.dispatch_leases(), "-inf", self.s.now(), start=0, num=limit)
        n = 0
        for sid in due:
            if self.expire(sid):
                n += 1
        return n

    def expire(self, session_id: str) -> bool:
        return self._requeue(session_id, "expired", "lease expired", due_only=True)

    def _requeue(self, session_id: str, outcome: str, reason: str | None, due_only: bool = False) -> bool:
        """Close an active session with ``outcome`` and send its issue back to ``todo``.

        After ``max_lease_expiries`` strikes (expired or failed sessions) the issue is parked
        in ``backlog`` with the ``needs-human-review`` label instead. Returns whether it acted.
        """
        k = self.k
        skey = k.session(session_id)
        for _ in range(10):
            session: dict[str, str] = self.s.r.hgetall(skey)
            if session.get("status") != "active":
                # A closed session never keeps a lease; drop a leftover so sweeps stay cheap.
                self.s.r.zrem(k.dispatch_leases(), session_id)
                return False
            if due_only and int(session["expiresAt"]) > self.s.now():
                return False
            iid = session["issueId"]
            strike = 1 if outcome in sessions.STRIKE_OUTCOMES else 0
            strikes = int(self.s.r.hget(k.dispatch_state(iid), "strikes") or 0)
            park = strike > 0 and strikes + strike >= self.s.settings.max_lease_expiries
            label_id = None
            if park:
                label_id = self.s.labels.ensure(sessions.NEEDS_REVIEW_LABEL, sessions.NEEDS_REVIEW_COLOR)["id"]
            verdict: Verdict = "act"

            def proceed(pipe: Pipe, old: Row, strikes: int = strikes) -> bool:  # bound now, not late
                nonlocal verdict
                verdict = self._requeue_verdict(pipe, old, session_id, strikes, due_only)
                return verdict == "act"

            intent = WriteIntent(close=SessionClose(session_id, outcome, reason, label_id))
            try:
                self.s.issues.update_if(iid, {"status": sessions.PARKED_STATUS if park else "todo",
                                              "agentSessionId": None}, proceed, intent)
            except NotFound:
                verdict = "drift"
            if verdict == "act":
                return True
            if verdict == "drift":
                return self._close_alone(session_id, outcome, reason)
        return False

    def _requeue_verdict(self, pipe: Pipe, old: Row, session_id: str, strikes: int, due_only: bool) -> Verdict:
        """Whether ``_requeue`` may write, read under WATCH of the issue's dispatch state and session."""
        state_key, skey = self.k.dispatch_state(old["id"]), self.k.session(session_id)
        pipe.watch(state_key, skey)
        state: dict[str, str] = pipe.hgetall(state_key)
        session: dict[str, str] = pipe.hgetall(skey)
        if session.get("status") != "active":
            return "retry"
        if due_only and int(session["expiresAt"]) > self.s.now():
            return "retry"
        if int(state.get("strikes", 0)) != strikes:
            return "retry"
        if state.get("session") != session_id or old["status"] != "in_progress":
            return "drift"
        return "act"

    def _close_alone(self, session_id: str, outcome: str, reason: str | None) -> bool:
        skey = self.k.session(session_id)

        def tx(pipe: Pipe) -> bool:
            session: dict[str, str] = pipe.hgetall(skey)
            if session.get("status") != "active":
                return False
            state_key = self.k.dispatch_state(session["issueId"])
            pipe.watch(state_key)
            # The issue may already name a newer session: only a name that is ours is cleared.
            holds = pipe.hget(state_key, "session") == session_id
            pipe.multi()
            sessions.stage_close(pipe, self.k, session, outcome, self.s.now(), reason, holds=holds)
            return True

        log.warning("session %s was active without holding its issue; closed as %s", session_id, outcome)
        return self.s.transact(tx, skey)

    # ------------------------------------------------------------------ fencing
    def fence(self, token: str) -> Fence:
        """A ``check`` for ``issues.update``: 409 unless ``token`` is the issue's live claim token."""
        return ClaimFence(self, token)

    # ------------------------------------------------------------------ schedule
    def promote_due(self, max_batches: int = SCHEDULE_MAX_BATCHES) -> int:
        """Move due scheduled issues into the ready sets (the worker's tick); how many moved."""
        return self.scheduler.promote_all(max_batches)

    def scheduled(self, limit: int, offset: int) -> tuple[list[Row], int]:
        """One page of the scheduled issues, soonest first (``GET /api/dispatch/scheduled``)."""
        return self.scheduler.scheduled(limit, offset)

    # ------------------------------------------------------------------ queue
    def queue(self, project_id: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
        """One page of the eligible issues, best first, with score and breakdown; and the total.
        Scheduled issues are left out until they fall due (:meth:`scheduled` lists them)."""
        ids, total = self._queue_ids(project_id, limit, offset)
        rows = self.s.issues.get_many(ids)
        return self._scored([(self.s.issues.wire(row), row) for row in rows]), total

    def queue_wire(self, project_id: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
        """:meth:`queue` with each issue already encoded (``GET /api/dispatch/queue``: the
        response embeds them; ``models.wire_entries``, the memo of row content -> wire form)."""
        ids, total = self._queue_ids(project_id, limit, offset)
        issues, rows = models.wire_entries(ISSUE_FIELDS, self.s.read_encoded("issue", ids), rows=True)
        return self._scored(list(zip(issues, rows, strict=True))), total

    def _queue_ids(self, project_id: str | None, limit: int, offset: int) -> tuple[list[str], int]:
        source, now = self.k.dispatch_ready(project_id), self.s.now()
        # One round trip in the usual case: whether a lease has expired or a scheduled issue is
        # due, read with the page; only then expire/promote (as before reading) and read again.
        for _ in range(2):
            pipe = self.s.r.pipeline(transaction=False)
            pipe.zrangebyscore(self.k.dispatch_leases(), "-inf", now, start=0, num=1)
            pipe.zrangebyscore(self.k.dispatch_scheduled(), "-inf", now, start=0, num=1)
            pipe.zrevrange(source, offset, offset + limit - 1)
            pipe.zcard(source)
            expired, due, members, total = pipe.execute()
            if not expired and not due:
                break
            self.expire_due()
            self.scheduler.promote_due()
        return [scoring.parse_member(m)[0] for m in members], int(total)

    def _scored(self, entries: list[tuple[Any, Row]]) -> list[Row]:
        """Queue items from (issue in wire form, its row) pairs: the score and its breakdown."""
        bonuses = self.index.bonuses(row["projectId"] for _, row in entries)
        now = self.s.now()
        items = []
        for issue, row in entries:
            parts = scoring.breakdown(row, bonuses.get(row["projectId"] or "", 0), now)
            items.append({"issue": issue, "score": sum(parts.values()), "breakdown": parts})
        return items


class ClaimFence(Fence):
    """:meth:`Dispatch.fence`'s check; names the token's session so the write reads it with the issue."""

    def __init__(self, dispatch: Dispatch, token: str) -> None:
        self.dispatch = dispatch
        self.token = token
        self.session_id = sessions.token_session(token)

    def __call__(self, pipe: Pipe, old: Row) -> None:
        sid, session = sessions.watched_active(pipe, self.dispatch.k, old["id"])
        if not sid:
            raise Conflict(STALE_TOKEN)
        if session.get("status") != "active" or not sessions.token_matches(session, self.token):
            raise Conflict(STALE_TOKEN)
        if int(session["expiresAt"]) <= self.dispatch.s.now():
            raise Conflict(LEASE_EXPIRED)
