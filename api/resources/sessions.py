"""Agent sessions: heartbeat and release a claim, read sessions, list an issue's sessions.

The claim token (from ``GET /api/dispatch/next``) goes in the ``X-Loop-Claim-Token`` header
or the body's ``token`` field. Without a token only the API key that claimed may act.
"""

from __future__ import annotations

import falcon

from api.http import Api, Op, Route, send
from loop.dispatch.sessions import SESSION_FIELDS, wire
from loop.schema import PAGINATION, Body, Bool, Query, Str

#: Row schemas this module adds to the OpenAPI document.
ENTITIES = {"AgentSession": SESSION_FIELDS}

TOKEN_HEADER = "X-Loop-Claim-Token"
HEARTBEAT = Body({"token": Str(min_len=1, description=f"The claim token (or the {TOKEN_HEADER} header)")})
RELEASE = Body({
    "token": Str(min_len=1, description=f"The claim token (or the {TOKEN_HEADER} header)"),
    "reason": Str(max_len=2000, nullable=True, description="Why the agent gives the issue back"),
    "failed": Bool(default=False, description="The agent tried and failed: the session closes as `failed` and "
                   "counts as a strike like a lease expiry (after LOOP_MAX_LEASE_EXPIRIES strikes the issue "
                   "is parked in backlog with needs-human-review). Default false: released, no strike."),
})
PAGE = Query(dict(PAGINATION))


def claim_token(req: falcon.Request, body: dict[str, object]) -> str | None:
    header = req.get_header(TOKEN_HEADER)
    if header:
        return header
    token = body.get("token")
    return token if isinstance(token, str) else None


class SessionItem:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        send(resp, {"data": wire(self.api.store.dispatch.get_session(session_id))})


class Heartbeat:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        body = self.api.body(req, HEARTBEAT)
        row = self.api.store.dispatch.heartbeat(session_id, req.context.key_name, claim_token(req, body))
        send(resp, {"data": row})


class Release:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        body = self.api.body(req, RELEASE)
        row = self.api.store.dispatch.release(session_id, req.context.key_name, claim_token(req, body),
                                              body.get("reason"), failed=body["failed"])
        send(resp, {"data": row})


class IssueSessions:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        q = self.api.query(req, PAGE)
        self.api.store.issues.get_live(issue_id)
        rows, total = self.api.store.dispatch.list_sessions(issue_id, q["offset"], q["limit"])
        send(resp, {"data": rows, "total": total})


def routes(api: Api) -> list[Route]:
    t = "Sessions"
    held = {200: "OK", 400: "Invalid", 403: "Not the claiming agent", 404: "Session not found",
            409: "Session not active, lease expired or stale token"}
    return [
        Route("/api/dispatch/claims/{session_id}", SessionItem(api), [
            Op("GET", "Get an agent session", t, responses={200: "OK", 404: "Not found"},
               response_schema="AgentSession"),
        ]),
        Route("/api/dispatch/claims/{session_id}/heartbeat", Heartbeat(api), [
            Op("POST", "Extend the claim's lease", t, body=HEARTBEAT, responses=held, response_schema="AgentSession"),
        ]),
        Route("/api/dispatch/claims/{session_id}/release", Release(api), [
            Op("POST", "Give the issue back to the queue (session released, or failed: a strike)", t, body=RELEASE, responses=held,
               response_schema="AgentSession"),
        ]),
        Route("/api/issues/{issue_id}/sessions", IssueSessions(api), [
            Op("GET", "List an issue's agent sessions, oldest first", t, query=PAGE,
               responses={200: "OK", 404: "Issue not found"}, response_schema="AgentSession"),
        ]),
    ]
