"""``/api/issues``: list, create, get, patch, delete, and label links."""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.fencing import claim_check
from api.http import Api, Op, Route, no_content, send
from loop.models import ISSUE_STATUSES, ISSUE_TYPES, OUTCOMES
from loop.schema import (
    PAGINATION,
    Array,
    Body,
    Enum,
    EnumList,
    Id,
    Int,
    Num,
    Obj,
    Query,
    Record,
    Str,
    Timestamp,
)

HYPOTHESIS = Obj(fields={
    "statement": Str(required=True),
    "confidence": Num(required=True, minimum=0, maximum=1),
    "evidence": Array(required=True, item=Str()),
    "validationCriteria": Str(required=True),
    "prediction": Str(),
})
COMMIT = Obj(fields={"sha": Str(required=True), "message": Str(required=True), "url": Str(),
                     "author": Str(), "timestamp": Str()})
PULL_REQUEST = Obj(fields={"number": Int(required=True), "title": Str(required=True), "url": Str(),
                           "state": Str(), "mergedAt": Str(nullable=True)})

NOT_BEFORE = "Dispatch never hands the issue out before this time (null: at once)"
OUTCOME = "What the check found (monitors and hypotheses only); a monitor done + invalidated records a new signal"

LIST_QUERY = Query({
    "status": EnumList(values=ISSUE_STATUSES),
    "type": EnumList(values=ISSUE_TYPES),
    "projectId": Str(),
    "labelId": Str(),
    "priority": Int(minimum=0, maximum=4),
    "parentId": Str(),
    **PAGINATION,
})
CREATE = Body({
    "title": Str(required=True, min_len=1, max_len=500),
    "description": Str(),
    "type": Enum(required=True, values=ISSUE_TYPES),
    "status": Enum(values=ISSUE_STATUSES),
    "priority": Int(minimum=0, maximum=4),
    "parentId": Id(),
    "projectId": Id(),
    "signalSource": Str(),
    "signalPayload": Record(),
    "hypothesis": HYPOTHESIS,
    "labelIds": Array(item=Str(min_len=1), max_items=100),
    "notBefore": Timestamp(nullable=True, description=NOT_BEFORE),
    "outcome": Enum(values=OUTCOMES, nullable=True, description=OUTCOME),
})
UPDATE = Body({
    "title": Str(min_len=1, max_len=500),
    "description": Str(),
    "type": Enum(values=ISSUE_TYPES),
    "status": Enum(values=ISSUE_STATUSES),
    "priority": Int(minimum=0, maximum=4),
    "parentId": Id(nullable=True),
    "projectId": Id(nullable=True),
    "signalSource": Str(),
    "signalPayload": Record(),
    "hypothesis": Obj(fields=HYPOTHESIS.fields, nullable=True),
    "agentSummary": Str(nullable=True),
    "agentSessionId": Id(nullable=True),
    "commits": Array(item=COMMIT, nullable=True),
    "pullRequests": Array(item=PULL_REQUEST, nullable=True),
    "notBefore": Timestamp(nullable=True, description=NOT_BEFORE),
    "outcome": Enum(values=OUTCOMES, nullable=True, description=OUTCOME),
}, min_fields=1)
LABEL_LINK = Body({"labelId": Id(required=True)})


class IssueList:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, LIST_QUERY)
        rows, total = self.api.store.issues.list_wire(q, q["limit"], q["offset"])
        send(resp, {"data": rows, "total": total})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self.api.body(req, CREATE)
        issue = self.api.store.issues.create(data)
        send(resp, {"data": self.api.store.issues.wire(issue)}, 201)


class IssueItem:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        # Ids start with a letter, so all digits is an issue number (`loop issues view 12`).
        if issue_id.isdigit() and len(issue_id) <= 18:
            issue_id = self.api.store.issues.id_by_number(int(issue_id)) or issue_id
        send(resp, {"data": self.api.store.issues.detail(issue_id)})

    def on_patch(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        data = self.api.body(req, UPDATE)
        issue = self.api.store.issues.update(issue_id, data, check=claim_check(self.api.store, req))
        send(resp, {"data": self.api.store.issues.wire(issue)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        self.api.store.issues.delete(issue_id)
        no_content(resp)


class IssueLabels:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        data = self.api.body(req, LABEL_LINK)
        self.api.store.issues.attach_label(issue_id, data["labelId"])
        send(resp, {"data": self.api.store.issues.detail(issue_id)["labels"]}, 201)


class IssueLabel:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_delete(self, req: falcon.Request, resp: falcon.Response, issue_id: str, label_id: str) -> None:
        self.api.store.issues.detach_label(issue_id, label_id)
        no_content(resp)


def routes(api: Api) -> list[Route]:
    t = "Issues"
    return [
        Route("/api/issues", IssueList(api), [
            Op("GET", "List issues (filters, pagination)", t, query=LIST_QUERY, response_schema="Issue"),
            Op("POST", "Create an issue", t, body=CREATE, responses={201: "Created", 400: "Invalid", 422: "Rule"},
               response_schema="Issue"),
        ]),
        Route("/api/issues/{issue_id}", IssueItem(api), [
            Op("GET", "Get an issue with parent, children, labels, relations", t,
               responses={200: "OK", 404: "Not found"}, response_schema="Issue"),
            Op("PATCH", "Update an issue", t, body=UPDATE,
               responses={200: "OK", 400: "Invalid", 404: "Not found", 409: "Stale claim", 422: "Rule"},
               response_schema="Issue"),
            Op("DELETE", "Soft-delete an issue", t, responses={204: "Deleted", 404: "Not found"}),
        ]),
        Route("/api/issues/{issue_id}/labels", IssueLabels(api), [
            Op("POST", "Attach a label to an issue", t, body=LABEL_LINK,
               responses={201: "Attached", 404: "Issue not found", 422: "Label not found"},
               response_body=oa.wrapped({"type": "array", "items": oa.ref("Label")})),
        ]),
        Route("/api/issues/{issue_id}/labels/{label_id}", IssueLabel(api), [
            Op("DELETE", "Detach a label from an issue", t, responses={204: "Detached", 404: "Not attached"}),
        ]),
    ]
