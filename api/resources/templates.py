"""``/api/templates``: prompt templates, their versions, promote, reviews and preview."""

from __future__ import annotations

from typing import Any

import falcon

from api.http import Api, Op, Route, no_content, send
from api.openapi import OBJECT, wrapped
from api.resources import experiments
from loop.errors import BusinessRuleError, PromptRenderError
from loop.models import AUTHOR_TYPES, ISSUE_TYPES
from loop.prompts.fields import REVIEW_FIELDS, SLUG_PATTERN, TEMPLATE_FIELDS, VERSION_FIELDS
from loop.schema import PAGINATION, Array, Body, Bool, Enum, Id, Int, Num, Obj, Query, Str

#: Row schemas this module adds to the OpenAPI document.
ENTITIES = {"PromptTemplate": TEMPLATE_FIELDS, "PromptVersion": VERSION_FIELDS, "PromptReview": REVIEW_FIELDS}

CONDITIONS = Obj(strict=True, description="All present keys must match the issue (AND); {} matches every issue", fields={
    "type": Enum(values=ISSUE_TYPES),
    "signalSource": Str(),
    "labels": Array(item=Str(min_len=1), max_items=50, description="Label names the issue must all carry"),
    "projectId": Str(min_len=1),
    "hasFailedSessions": Bool(description="An earlier session on the issue failed, expired or was released"),
    "hypothesisConfidence": Num(minimum=0, maximum=1, description="Minimum hypothesis confidence"),
})
CREATE = Body({
    "slug": Str(required=True, min_len=1, max_len=200, pattern=SLUG_PATTERN),
    "name": Str(required=True, min_len=1, max_len=500),
    "description": Str(),
    "conditions": CONDITIONS,
    "specificity": Int(minimum=0, maximum=100, default=10),
    "projectId": Id(),
})
UPDATE = Body({
    "name": Str(min_len=1, max_len=500),
    "description": Str(),
    "conditions": CONDITIONS,
    "specificity": Int(minimum=0, maximum=100),
    "projectId": Id(nullable=True),
}, min_fields=1)
VERSION_CREATE = Body({
    "content": Str(required=True, min_len=1, description="Handlebars source (see docs/prompts.md)"),
    "changelog": Str(),
    "authorType": Enum(required=True, values=AUTHOR_TYPES),
    "authorName": Str(required=True, min_len=1, max_len=200),
})
PAGE = Query(dict(PAGINATION))


class TemplateList:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, PAGE)
        svc = self.api.store.prompts.templates
        rows, total = svc.list(q["limit"], q["offset"])
        send(resp, {"data": [svc.wire(r) for r in rows], "total": total})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        svc = self.api.store.prompts.templates
        send(resp, {"data": svc.wire(svc.create(self.api.body(req, CREATE)))}, 201)


class TemplateItem:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        send(resp, {"data": self.api.store.prompts.template_detail(template_id)})

    def on_patch(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        svc = self.api.store.prompts.templates
        send(resp, {"data": svc.wire(svc.update(template_id, self.api.body(req, UPDATE)))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        self.api.store.prompts.templates.delete(template_id)
        no_content(resp)


class TemplateVersions:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        q = self.api.query(req, PAGE)
        svc = self.api.store.prompts.versions
        rows, total = svc.list(template_id, q["limit"], q["offset"])
        send(resp, {"data": [svc.wire(r) for r in rows], "total": total})

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        data = self.api.body(req, VERSION_CREATE)
        svc = self.api.store.prompts.versions
        send(resp, {"data": svc.wire(svc.create(template_id, data))}, 201)


class Promote:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str, version_id: str) -> None:
        svc = self.api.store.prompts.versions
        who = f"key:{req.context.key_name or 'anonymous'}"
        send(resp, {"data": svc.wire(svc.promote(template_id, version_id, actor=who))})


class TemplateReviews:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        q = self.api.query(req, PAGE)
        svc = self.api.store.prompts.reviews
        rows, total = svc.list_for_template(template_id, q["limit"], q["offset"])
        send(resp, {"data": [svc.wire(r) for r in rows], "total": total})


class Preview:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        try:
            result: dict[str, Any] = self.api.store.prompts.preview(issue_id)
        except PromptRenderError as exc:
            raise BusinessRuleError(exc.message) from None
        # Top-level keys for the reference's tests and MCP, the same object under data for the SDK.
        send(resp, {**result, "data": dict(result)})


def routes(api: Api) -> list[Route]:
    t = "Templates"
    base = "/api/templates"
    missing = {404: "Template not found"}
    return [
        Route(base, TemplateList(api), [
            Op("GET", "List prompt templates (seeded defaults included)", t, query=PAGE,
               response_schema="PromptTemplate"),
            Op("POST", "Create a prompt template (no version yet)", t, body=CREATE,
               responses={201: "Created", 400: "Invalid", 409: "Slug already exists"}, response_schema="PromptTemplate"),
        ]),
        Route(base + "/preview/{issue_id}", Preview(api), [
            Op("GET", "Dry-run template selection and rendering for an issue", t,
               responses={200: "OK", 404: "Issue not found", 422: "Template failed to render"},
               response_body=wrapped(OBJECT)),
        ]),
        Route(base + "/{template_id}", TemplateItem(api), [
            Op("GET", "Get a template with its active version", t, responses={200: "OK", **missing},
               response_schema="PromptTemplate"),
            Op("PATCH", "Update a template (slug is immutable)", t, body=UPDATE,
               responses={200: "OK", 400: "Invalid", **missing}, response_schema="PromptTemplate"),
            Op("DELETE", "Soft-delete a template", t, responses={204: "Deleted", **missing}),
        ]),
        Route(base + "/{template_id}/versions", TemplateVersions(api), [
            Op("GET", "List a template's versions, newest first", t, query=PAGE,
               responses={200: "OK", 400: "Invalid", **missing}, response_schema="PromptVersion"),
            Op("POST", "Create a version (the first one becomes active)", t, body=VERSION_CREATE,
               responses={201: "Created", 400: "Invalid", **missing, 422: "Content does not compile or uses "
                          "unknown partials/helpers"}, response_schema="PromptVersion"),
        ]),
        Route(base + "/{template_id}/versions/{version_id}/promote", Promote(api), [
            Op("POST", "Make a version active, retiring the previous one (atomic)", t,
               responses={200: "OK", 404: "Template or version not found", 422: "Version is already active"},
               response_schema="PromptVersion"),
        ]),
        Route(base + "/{template_id}/reviews", TemplateReviews(api), [
            Op("GET", "Reviews of all the template's versions, newest first", t, query=PAGE,
               responses={200: "OK", 400: "Invalid", **missing}, response_schema="PromptReview"),
        ]),
        *experiments.routes(api, base),
    ]
