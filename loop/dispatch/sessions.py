"""Agent sessions: one per successful claim, closed as completed, failed, expired or released.

A session is the hash ``P:session:<id>``; its issue lists it in ``P:issue:<id>:sessions``
and, while active, in ``P:dispatch:leases`` (scored by lease expiry) and in the issue's
dispatch state (``session`` field). Closing always happens inside the same MULTI as the
issue change that caused it (see :class:`loop.dispatch.index.DispatchIssueHook`).
"""

from __future__ import annotations

import hmac
import secrets

from loop import models
from loop.ids import token_digest as token_digest  # re-exported: loop.dispatch.claim
from loop.keys import Keys
from loop.models import Row
from loop.store.types import ATTEMPT_SESSION, Client, Pipe, is_id
from loop.tunables import EXPERIMENT_DURATION_SAMPLE

SESSION_FIELDS: dict[str, str] = {
    "id": "s", "issueId": "s", "agentName": "s", "status": "s", "claimedAt": "t", "expiresAt": "t",
    "endedAt": "t", "summary": "s", "reason": "s", "versionId": "s",
}
SESSION_STATUSES = ("active", "completed", "failed", "expired", "released")
#: Outcomes that count as a strike against the issue (see ``Settings.max_lease_expiries``).
STRIKE_OUTCOMES = ("expired", "failed")
#: Counters kept per prompt version (``version_stats``).
VERSION_COUNTERS = ("dispatched", "completed", "failed", "expired", "released", "completedDurationMsSum")
NEEDS_REVIEW_LABEL = "needs-human-review"
NEEDS_REVIEW_COLOR = "#d93f0b"
#: Where an issue goes after too many strikes: out of the queue, visible to people.
PARKED_STATUS = "backlog"


def new_claim_token(session_id: str) -> str:
    """A claim token naming its session: ``claim_<sessionId>_<64 hex>`` (the hex is the secret;
    the id, public anyway, lets a fenced write read the session with its issue in one round trip)."""
    return f"claim_{session_id}_{secrets.token_hex(32)}"


def token_session(token: str) -> str | None:
    """The session id a claim token names; ``None`` for a token without one (``claim_`` + 64 hex,
    from an older Loop: its fenced writes take the longer path)."""
    parts = token.split("_")
    return parts[1] if len(parts) == 3 and parts[0] == "claim" and is_id(parts[1]) else None


def token_matches(session: dict[str, str], token: str) -> bool:
    return hmac.compare_digest(session.get("tokenHash", ""), token_digest(token))


def watched_active(pipe: Pipe, keys: Keys, issue_id: str) -> tuple[str | None, dict[str, str]]:
    """WATCH and read the session the issue's dispatch state names, and that session's hash
    (``(None, {})`` when it names none). Read once per transaction attempt: a PATCH with a claim
    token checks the fence, then the dispatch hook closes the same session (4 round trips saved;
    see ``RedisStore.transact``'s ``attempt_reads``)."""
    memo: dict[object, object] | None = getattr(pipe, "attempt_reads", None)
    if memo is not None and (ATTEMPT_SESSION, issue_id) in memo:
        found = memo[(ATTEMPT_SESSION, issue_id)]
        assert isinstance(found, tuple)
        return found
    state_key = keys.dispatch_state(issue_id)
    pipe.watch(state_key)
    sid: str | None = pipe.hget(state_key, "session") or None
    session: dict[str, str] = {}
    if sid:
        pipe.watch(keys.session(sid))
        session = pipe.hgetall(keys.session(sid))
    if memo is not None:
        memo[(ATTEMPT_SESSION, issue_id)] = (sid, session)
    return sid, session


def decode(raw: dict[str, str]) -> Row:
    return models.decode(SESSION_FIELDS, raw)


def wire(row: Row) -> Row:
    return models.wire(SESSION_FIELDS, row)


def version_stats(r: Client, keys: Keys, version_id: str) -> dict[str, int]:
    """The outcome counters of one prompt version (``P:dispatch:version:<id>``)."""
    raw = r.hgetall(keys.dispatch_version(version_id))
    return {name: int(raw.get(name, 0)) for name in VERSION_COUNTERS}


def default_outcome(new: Row) -> tuple[str, str | None]:
    """Outcome and reason of an active session whose issue left ``in_progress`` by a plain write."""
    if new["deletedAt"] is not None:
        return "released", "issue deleted"
    if new["status"] == "done":
        return "completed", None
    if new["status"] == "canceled":
        return "failed", "issue canceled"
    return "released", f"issue status set to {new['status']}"


def created(sid: str, issue_id: str, agent: str, now: int, expires: int, token_hash: str) -> list[str]:
    """The hash ``dispatch_claim.lua`` creates for a new session (flat field/value list, in its HSET's order)."""
    return ["id", sid, "issueId", issue_id, "agentName", agent, "status", "active",
            "claimedAt", str(now), "expiresAt", str(expires), "tokenHash", token_hash]


def stage_version(pipe: Pipe, keys: Keys, session_id: str, version_id: str) -> None:
    """Queue the writes that record which prompt version a claim was handed (on a MULTI pipeline):
    the session's ``versionId`` and the version's ``dispatched`` counter
    (``PromptService.render_for_dispatch`` queues them with the version's usage count).
    """
    pipe.hset(keys.session(session_id), "versionId", version_id)
    pipe.hincrby(keys.dispatch_version(version_id), "dispatched", 1)


def stage_close(pipe: Pipe, keys: Keys, session: dict[str, str], outcome: str, now: int,
                reason: str | None = None, summary: str | None = None, holds: bool = True) -> None:
    """Queue the writes that end an active session (on a MULTI pipeline); ``holds``: the issue's
    dispatch state names this session (else its ``session`` field is left alone)."""
    sid, issue_id = session["id"], session["issueId"]
    fields = {"status": outcome, "endedAt": str(now)}
    if reason:
        fields["reason"] = reason
    if summary:
        fields["summary"] = summary
    pipe.hset(keys.session(sid), mapping=fields)
    pipe.zadd(keys.retention("sessions"), {sid: now})  # closed: retention may purge it from now on
    pipe.zrem(keys.dispatch_leases(), sid)
    # Counted here, in the close's MULTI, so every path (PATCH, release, sweeps) counts once.
    pipe.hincrby(keys.session_outcomes(), outcome, 1)
    if holds:
        pipe.hdel(keys.dispatch_state(issue_id), "session")
    version = session.get("versionId")
    if version:
        vkey = keys.dispatch_version(version)
        pipe.hincrby(vkey, outcome, 1)
        if outcome == "completed":
            took = max(0, now - int(session["claimedAt"]))
            pipe.hincrby(vkey, "completedDurationMsSum", took)
            # A bounded sample of recent durations: the prompt experiments' median (loop/prompts/experiments.py).
            sample = keys.version_durations(version)
            pipe.zadd(sample, {f"{sid}:{took}": now})
            pipe.zremrangebyrank(sample, 0, -EXPERIMENT_DURATION_SAMPLE - 1)
