"""``POST /api/issues/{id}/relations`` and ``DELETE /api/relations/{id}``."""

from __future__ import annotations

import falcon

from api.fencing import claim_check
from api.http import Api, Op, Route, no_content, send
from loop.models import RELATION_TYPES
from loop.schema import Body, Enum, Id

CREATE = Body({"type": Enum(required=True, values=RELATION_TYPES), "relatedIssueId": Id(required=True)})


class IssueRelations:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        data = self.api.body(req, CREATE)
        row = self.api.store.relations.create(issue_id, data["type"], data["relatedIssueId"],
                                              check=claim_check(self.api.store, req))
        send(resp, {"data": self.api.store.relations.wire(row)}, 201)


class RelationItem:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_delete(self, req: falcon.Request, resp: falcon.Response, relation_id: str) -> None:
        self.api.store.relations.delete(relation_id, check=claim_check(self.api.store, req))
        no_content(resp)


def routes(api: Api) -> list[Route]:
    t = "Relations"
    return [
        Route("/api/issues/{issue_id}/relations", IssueRelations(api), [
            Op("POST", "Relate an issue to another (blocks, blocked_by, related, duplicate)", t, body=CREATE,
               responses={201: "Created", 400: "Invalid", 404: "Issue not found", 409: "Stale claim token",
                          422: "Rule"},
               response_schema="IssueRelation"),
        ]),
        Route("/api/relations/{relation_id}", RelationItem(api), [
            Op("DELETE", "Delete a relation", t,
               responses={204: "Deleted", 404: "Not found", 409: "Stale claim token of the relation's issue"}),
        ]),
    ]
