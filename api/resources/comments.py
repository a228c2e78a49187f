"""``/api/issues/{id}/comments``."""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.fencing import claim_check
from api.http import Api, Op, Route, send
from loop.models import AUTHOR_TYPES
from loop.schema import Body, Enum, Id, Str

CREATE = Body({
    "body": Str(required=True, min_len=1),
    "authorName": Str(required=True, min_len=1),
    "authorType": Enum(required=True, values=AUTHOR_TYPES),
    "parentId": Id(),
})


class IssueComments:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        send(resp, {"data": self.api.store.comments.threaded(issue_id)})

    def on_post(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        data = self.api.body(req, CREATE)
        row = self.api.store.comments.create(issue_id, data, key_name=req.context.key_name,
                                             check=claim_check(self.api.store, req))
        from loop.models import COMMENT_FIELDS, wire

        send(resp, {"data": wire(COMMENT_FIELDS, row)}, 201)


def routes(api: Api) -> list[Route]:
    t = "Comments"
    return [
        Route("/api/issues/{issue_id}/comments", IssueComments(api), [
            Op("GET", "Threaded comments of an issue", t, responses={200: "OK", 404: "Issue not found"},
               response_body=oa.wrapped({"type": "array", "items": oa.ref("Comment")})),
            Op("POST", "Comment on an issue", t, body=CREATE,
               responses={201: "Created", 400: "Invalid", 404: "Issue not found", 409: "Stale claim token",
                          422: "Parent comment not found"},
               response_schema="Comment"),
        ]),
    ]
