"""``/api/dispatch``: claim the next issue (``/next``) and preview the queue (``/queue``)."""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.http import Api, Op, Route, no_content, send
from loop import metrics
from loop.schema import PAGINATION, Query, Str

NEXT_QUERY = Query({"projectId": Str(min_len=1, description="Only dispatch issues of this project")})
QUEUE_QUERY = Query({"projectId": Str(min_len=1), **PAGINATION})
SCHEDULED_QUERY = Query({**PAGINATION})


class Next:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, NEXT_QUERY)
        agent = req.context.key_name or "anonymous"
        result = self.api.store.dispatch.next(agent, q.get("projectId"))
        if result is None:
            metrics.EMPTY_POLLS.inc()
            no_content(resp)
            return
        metrics.CLAIMS.inc()
        send(resp, result)


class DispatchQueue:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, QUEUE_QUERY)
        items, total = self.api.store.dispatch.queue_wire(q.get("projectId"), q["limit"], q["offset"])
        send(resp, {"data": items, "total": total})


class Scheduled:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, SCHEDULED_QUERY)
        rows, total = self.api.store.dispatch.scheduled(q["limit"], q["offset"])
        send(resp, {"data": [self.api.store.issues.wire(r) for r in rows], "total": total})


_NULLABLE_OBJECT = {"type": ["object", "null"]}
#: The claim answer: the fields at the top level and again under ``data`` (the SDKs read either).
_CLAIM = oa.obj(issue=oa.OBJECT, prompt={"type": ["string", "null"]}, meta=_NULLABLE_OBJECT,
                claim=oa.obj(sessionId=oa.STRING, token=oa.STRING, expiresAt=oa.STRING))
CLAIMED = {**_CLAIM, "properties": {**_CLAIM["properties"], "data": _CLAIM},
           "required": [*_CLAIM["required"], "data"]}


def routes(api: Api) -> list[Route]:
    t = "Dispatch"
    return [
        Route("/api/dispatch/next", Next(api), [
            Op("GET", "Claim the best eligible issue: its prompt and a leased claim (204 when none)", t,
               query=NEXT_QUERY, responses={200: "Claimed", 204: "Nothing eligible", 400: "Invalid",
                                            500: "Prompt rendering failed; the issue was returned to the queue"},
               response_body=CLAIMED),
        ]),
        Route("/api/dispatch/queue", DispatchQueue(api), [
            Op("GET", "Eligible issues, best first, with score and breakdown", t, query=QUEUE_QUERY,
               responses={200: "OK", 400: "Invalid"}, response_body=oa.wrapped(oa.OBJECT, total=True)),
        ]),
        Route("/api/dispatch/scheduled", Scheduled(api), [
            Op("GET", "Scheduled issues (notBefore in the future), soonest first", t, query=SCHEDULED_QUERY,
               responses={200: "OK", 400: "Invalid"}, response_schema="Issue"),
        ]),
    ]
