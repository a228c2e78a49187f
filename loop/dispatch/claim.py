"""The claim: read the top candidates, then one Lua script claims the first eligible one."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loop import models
from loop.dispatch import scoring, sessions
from loop.errors import Conflict
from loop.ids import new_id, new_token
from loop.models import ISSUE_FIELDS, Row

if TYPE_CHECKING:
    from loop.store.base import RedisStore

CLAIM_SCRIPT = "dispatch_claim"
#: Candidates passed per script call: absorbs a few concurrent claimers of the top items.
CANDIDATES = 12
#: Under contention the retry lists grow up to this many candidates.
MAX_CANDIDATES = 48
BACKOFF_UNIT = 0.001
MAX_BACKOFF = 0.05
#: Script calls before giving up under extreme contention (each call that loses still makes progress).
MAX_ATTEMPTS = 200


@dataclass(frozen=True)
class Claim:
    issue: Row
    session_id: str
    token: str
    expires_at: int


class Claimer:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def candidates_pipeline(self, pipe: Any, project_id: str | None) -> None:
        """Queue the candidate read (so callers can batch it with other reads)."""
        pipe.zrevrange(self.k.dispatch_ready(project_id), 0, CANDIDATES - 1)

    def claim(self, agent: str, project_id: str | None, members: list[str] | None = None) -> Claim | None:
        """Claim the best eligible issue (of ``project_id`` if given); ``None`` when there is none.

        ``members`` are the candidates already read by the caller, best first.
        """
        k = self.k
        source = k.dispatch_ready(project_id)
        if members is None:
            members = self.s.r.zrevrange(source, 0, CANDIDATES - 1)
        fixed = [k.dispatch_ready(), source, k.dispatch_leases(), k.issue_index("status", "todo"),
                 k.issue_index("status", "in_progress"), k.counts("project_status"), k.issue_roots()]
        script = self.s.scripts[CLAIM_SCRIPT]
        # One id and token per claim: a losing attempt creates nothing, so they can be reused.
        sid, token = new_id(), new_token("claim_")
        digest = sessions.token_digest(token)
        for attempt in range(MAX_ATTEMPTS):
            if not members:
                return None
            if attempt >= 1:
                # Every candidate went to concurrent claimers: back off a little (exponential,
                # with jitter) so a herd of claimers spreads out instead of colliding again.
                time.sleep(random.uniform(0, min(MAX_BACKOFF, BACKOFF_UNIT * 2 ** (attempt - 1))))
            now = self.s.now()
            expires = now + self.s.settings.lease_seconds * 1000
            keys = [*fixed, k.session(sid)]
            for m in members:
                iid, pid = scoring.parse_member(m)
                keys += [k.issue(iid), k.dispatch_state(iid), k.dispatch_ready(pid), k.issue_sessions(iid)]
            fresh = min(CANDIDATES * 2 ** (attempt + 1), MAX_CANDIDATES)
            args: list[Any] = [now, expires, sid, agent, digest, fresh, len(members),
                               *members]
            out = script(keys=keys, args=args)
            if out[0] == "ok":
                issue = models.decode(ISSUE_FIELDS, dict(zip(out[2::2], out[3::2], strict=True)))
                return Claim(issue, sid, token, expires)
            if out[0] == "empty":
                return None
            # Lost every candidate to concurrent claimers: retry with the fresh head of the set.
            members = list(out[1:])
        raise Conflict("Dispatch is heavily contended; retry the request.")
