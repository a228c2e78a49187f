"""The claim: one Lua script claims the best eligible issue among the candidates passed.

Steady state is one round trip per claim: after a claim the script returns the new head of
the ready set, which this process keeps as the candidates of its next claim. The script only
claims the set's current best member, so stale candidates cost a retry, never a worse pick.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loop import models
from loop.dispatch import scoring, sessions
from loop.dispatch.schedule import Scheduler
from loop.errors import Conflict
from loop.ids import new_id
from loop.models import ISSUE_FIELDS, Row
from loop.tunables import CLAIM_BACKOFF_UNIT as BACKOFF_UNIT
from loop.tunables import CLAIM_CANDIDATES as CANDIDATES
from loop.tunables import CLAIM_ENTERED_HINTS as ENTERED_HINTS
from loop.tunables import CLAIM_MAX_ATTEMPTS as MAX_ATTEMPTS
from loop.tunables import CLAIM_MAX_BACKOFF as MAX_BACKOFF
from loop.tunables import CLAIM_MAX_CANDIDATES as MAX_CANDIDATES
from loop.tunables import CLAIM_REFILL_BELOW as REFILL_BELOW

if TYPE_CHECKING:
    from loop.store.base import RedisStore

CLAIM_SCRIPT = "dispatch_claim"
#: The fields a brief claim returns, in the script's order.
BRIEF = ("id", "number", "title", "type", "priority", "status", "projectId")
CONTENDED = ("Dispatch is heavily contended: no claim won within {ms} ms ({n} attempts); "
             "retry the request.")

@dataclass(frozen=True)
class Claim:
    issue: Row
    session_id: str
    token: str
    expires_at: int
    #: The issue's and the new session's hashes as the claim left them (flat field/value lists, in
    #: HGETALL's order); ``None`` for a brief claim. What a fenced write would read (Issues.expected).
    written: tuple[list[str], list[str]] | None = None


class LeaseDue(Exception):
    """A lease has expired: the caller sweeps, then claims."""


class Claimer:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        self.scheduler = Scheduler(store)
        self._lock = threading.Lock()
        #: source ready-set key -> the head of that set as the last claim saw it
        self._next: dict[str, list[str]] = {}
        #: source ready-set key -> members this process last put into it (newest first)
        self._entered: dict[str, list[str]] = {}

    def entered(self, member: str, project_id: str | None) -> None:
        """``member`` is (being) put into the ready sets by a write of this process: pass it as an
        extra candidate of the next claims. A re-opened issue keeps its score, so it is usually
        the best again, which the remembered head (read before) cannot name: without the hint
        the claim after a re-open misses once and retries. Only a hint: the script still claims
        the set's current best only, and ignores a member not in the set."""
        sources = [self.k.dispatch_ready(), *([self.k.dispatch_ready(project_id)] if project_id else [])]
        with self._lock:
            for source in sources:
                recent = [member, *(m for m in self._entered.get(source, ()) if m != member)]
                self._entered[source] = recent[:ENTERED_HINTS]

    def claim(self, agent: str, project_id: str | None, members: list[str] | None = None,
              check_due: bool = False, full: bool = True) -> Claim | None:
        """Claim the best eligible issue (of ``project_id`` if given); ``None`` when there is none.

        ``members``: candidates to start from (default: this process's remembered head, else a
        fresh read). ``check_due``: raise :class:`LeaseDue` instead of claiming while a lease is expired.
        ``full``: the claim's issue has every field (else id, number, title, type, priority, status,
        projectId; the rest are ``None``).
        """
        k = self.k
        source = k.dispatch_ready(project_id)
        extra: list[str] = []
        if members is None:
            # Shared, not taken: every thread of the process starts from the remembered head (the
            # script claims the set's current best if it is among them, whichever thread's list it
            # came from), instead of all but one paying a ZREVRANGE round trip of their own.
            with self._lock:
                members = self._next.get(source) or None
                extra = list(self._entered.get(source, ()))
        if members is None:
            members = self.s.r.zrevrange(source, 0, CANDIDATES - 1)
            if not members and not check_due:
                # (with check_due the script still runs: an expired lease or a due scheduled issue
                # may refill the set)
                if self.scheduler.promote_due()[0] == 0:
                    return None
                members = self.s.r.zrevrange(source, 0, CANDIDATES - 1)
        extra = [m for m in extra if m not in members]
        fixed = [k.dispatch_ready(), source, k.dispatch_leases(), k.issue_bits("status", "todo"),
                 k.issue_bits("status", "in_progress"), k.counts("project_status"), k.issue_roots()]
        script = self.s.scripts[CLAIM_SCRIPT]
        # One id and token per claim: a losing attempt creates nothing, so they can be reused.
        sid = new_id()
        token = sessions.new_claim_token(sid)
        digest = sessions.token_digest(token)
        # Bounded by wall time too: backoff sleeps add up, and a claim runs in a sync worker.
        deadline = self.s.now() + self.s.settings.claim_timeout_ms
        tries = 0
        check_scheduled = True  # one batch of due scheduled issues per claim, at most
        for attempt in range(MAX_ATTEMPTS):
            if attempt >= 1 and self.s.now() >= deadline:
                break
            if attempt >= 2:
                # The head moved under us twice (a first miss is usually just a stale remembered
                # head): others are claiming too. Back off (exponential, with jitter) so a herd
                # of claimers spreads out instead of colliding again.
                time.sleep(random.uniform(0, min(MAX_BACKOFF, BACKOFF_UNIT * 2 ** (attempt - 2))))
            now = self.s.now()
            expires = now + self.s.settings.lease_seconds * 1000
            keys = [*fixed, k.session(sid), k.counts("project_status_type"), k.dispatch_scheduled()]
            for m in (*members, *extra):
                iid, pid = scoring.parse_member(m)
                keys += [k.issue(iid), k.dispatch_state(iid), k.dispatch_ready(pid), k.issue_sessions(iid)]
            want = CANDIDATES if attempt == 0 else MAX_CANDIDATES
            # After a claim the rest of this list is still the head; only ask for a fresh head
            # (a ZREVRANGE in the script, K more members in the reply) when the rest runs short.
            after = want if len(members) <= REFILL_BELOW else 0
            args: list[Any] = [now, expires, sid, agent, digest, want, after,
                               "1" if check_due and attempt == 0 else "0", "full" if full else "brief",
                               "1" if check_scheduled else "0", len(members) + len(extra), *members, *extra]
            out = script(keys=keys, args=args)
            tries += 1
            if out[0] == "ok":
                nk, won = int(out[2]), out[1]
                # Claimed from the extras, the remembered head is still the head behind it.
                head = list(out[3:3 + nk]) if nk else members[members.index(won) + 1:] if won in members else members
                with self._lock:
                    self._next[source] = head
                    for source_key, recent in self._entered.items():
                        if won in recent:
                            self._entered[source_key] = [m for m in recent if m != won]
                values = out[3 + nk:]
                if not full:
                    brief = {f: v for f, v in zip(BRIEF, values, strict=True) if v is not None}
                    return Claim(models.decode(ISSUE_FIELDS, brief), sid, token, expires)
                session = sessions.created(sid, scoring.parse_member(won)[0], agent, now, expires, digest)
                return Claim(models.decode(ISSUE_FIELDS, models.pairs(values)), sid, token, expires,
                             (values, session))
            if out[0] == "empty":
                return None
            if out[0] == "due":
                raise LeaseDue
            if out[0] == "scheduled":
                # Due issues may now outrank the candidates: the next attempt retries with the new head.
                check_scheduled = False
                self.scheduler.promote_due()
                members, extra = self.s.r.zrevrange(source, 0, CANDIDATES - 1), []
                continue
            members, extra = list(out[1:]), []
        raise Conflict(CONTENDED.format(ms=self.s.settings.claim_timeout_ms, n=tries))
