"""OpenAPI 3.1 document generated from the route table and the row codecs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from api.http import Op, Route
from loop import models
from loop.schema import Body

TAGS = ["System", "Issues", "Relations", "Comments", "Projects", "Goals", "Labels", "Signals", "Templates",
        "Prompt Reviews", "Dispatch", "Dashboard", "Webhooks", "Keys", "Sessions"]

_KIND: dict[str, dict[str, Any]] = {
    "s": {"type": "string"}, "S": {"type": "string"}, "i": {"type": "integer"}, "f": {"type": "number"},
    "t": {"type": "string", "format": "date-time"}, "j": {}, "b": {"type": "boolean"}}

ENTITY_FIELDS: dict[str, Mapping[str, str]] = {
    "Issue": models.ISSUE_FIELDS,
    "Project": models.PROJECT_FIELDS,
    "Goal": models.GOAL_FIELDS,
    "Label": models.LABEL_FIELDS,
    "IssueRelation": models.RELATION_FIELDS,
    "Comment": models.COMMENT_FIELDS,
}
#: What a resource module's ``ENTITIES`` declares: schema name -> row codec fields.
Entities = Mapping[str, Mapping[str, str]]


def entity_schema(fields: Mapping[str, str]) -> dict[str, Any]:
    props = {}
    for name, kind in fields.items():
        base = dict(_KIND[kind])
        if name not in ("id", "createdAt"):
            base = {"anyOf": [base, {"type": "null"}]} if not base or "type" not in base else {
                **base, "type": [base["type"], "null"]}
        props[name] = base
    return {"type": "object", "properties": props, "required": list(fields)}


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", r"{\1}", template)


def document(routes: Iterable[Route], version: str, entities: Entities | None = None,
             loop_url: str | None = None) -> dict[str, Any]:
    """The document for ``routes``; ``entities`` are the row schemas the subsystems add to the core
    ones; ``servers`` names ``loop_url`` (``LOOP_URL``)."""
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(_path(route.path), {})
        params = re.findall(r"\{(\w+)\}", route.path)
        for op in route.ops:
            o: dict[str, Any] = {
                "tags": [op.tag],
                "summary": op.summary,
                "operationId": f"{op.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', route.path).strip('_')}",
                "responses": responses(op, route.path),
            }
            parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
            if op.query is not None:
                parameters += op.query.openapi()
            if parameters:
                o["parameters"] = parameters
            if op.body is not None:
                o["requestBody"] = request_body(op.body)
            if not op.public and not op.webhook:
                o["security"] = [{"bearerAuth": []}]
            item[op.method.lower()] = o
    schemas = {name: entity_schema(f) for name, f in {**ENTITY_FIELDS, **(entities or {})}.items()}
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"},
                       "details": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}},
        "required": ["error"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Loop API", "version": version, "license": {"name": "MIT"},
                 "contact": {"url": "https://www.looped.me"}},
        "servers": servers(loop_url),
        "tags": [{"name": t} for t in TAGS],
        "paths": paths,
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}, "schemas": schemas,
                       "responses": ERROR_RESPONSES, "headers": {"Retry-After": RETRY_AFTER}},
    }


# ------------------------------------------------------- what the server really answers
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
#: The errors every operation may answer, by the condition that makes the server answer them.
ERROR_RESPONSES: dict[str, Any] = {
    "Unauthorized": {"description": "Missing, malformed or invalid API key", "content": _ERROR},
    "Invalid": {"description": "Invalid body, query or header (the error names each problem)", "content": _ERROR},
    "TooLarge": {"description": "Request body over the size limit", "content": _ERROR},
    "Unavailable": {"description": "Redis cannot serve now; retry after Retry-After seconds", "content": _ERROR,
                    "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}},
}


def envelope(op: Op, path: str) -> dict[str, Any] | None:
    """The 2xx body schema: ``{data: [X], total}`` for a collection GET, ``{data: X}`` otherwise."""
    if op.response_body is not None:
        return dict(op.response_body)
    if op.response_schema is None:
        return None
    ref = {"$ref": f"#/components/schemas/{op.response_schema}"}
    if op.method == "GET" and not path.rstrip("/").endswith("}"):
        return {"type": "object", "properties": {"data": {"type": "array", "items": ref}, "total": {"type": "integer"}},
                "required": ["data", "total"]}
    return {"type": "object", "properties": {"data": ref}, "required": ["data"]}


def responses(op: Op, path: str) -> dict[str, Any]:
    """Documented answers of ``op``: its own, plus the errors the middleware and handlers add."""
    body = envelope(op, path)
    out: dict[str, Any] = {}
    for code, desc in op.responses.items():
        if code == 204 or code < 200:
            out[str(code)] = {"description": desc}
        elif code < 300:
            out[str(code)] = {"description": desc, **({"content": {op.media_type: {"schema": body}}}
                                                      if body is not None else {})}
        elif code == 503 and body is not None and op.public:
            # The health routes answer their own report with 503 (not the Error body).
            out[str(code)] = {"description": desc, "content": {op.media_type: {"schema": body}},
                              "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}}
        elif code == 503:
            out[str(code)] = {**ERROR_RESPONSES["Unavailable"], "description": desc}
        else:
            out[str(code)] = {"description": desc, "content": _ERROR}
    added: dict[str, str] = {"401": "Unauthorized"} if not op.public and not op.webhook else {}
    if op.body is not None or op.query is not None or op.method in ("POST", "PATCH", "DELETE"):
        added["400"] = "Invalid"  # the body, the query, or the Idempotency-Key header
    if op.body is not None or op.method in ("POST", "PATCH", "PUT"):
        added["413"] = "TooLarge"
    added["503"] = "Unavailable"
    for status, name in added.items():
        out.setdefault(status, {"$ref": f"#/components/responses/{name}"})
    if "{" in path:
        out.setdefault("404", {"description": "Not found", "content": _ERROR})
    if op.method in ("POST", "PATCH", "DELETE"):
        # Idempotency-Key: 409 while the first request runs, 422 when reused with another body.
        out.setdefault("409", {"description": "Idempotency-Key still in progress", "content": _ERROR})
        out.setdefault("422", {"description": "Idempotency-Key reused with a different body", "content": _ERROR})
    return out


def request_body(body: Body) -> dict[str, Any]:
    schema = body.openapi()
    if body.min_fields:
        # The empty-PATCH rule: at least one known field (unknown keys do not count).
        schema = {**schema, "anyOf": [{"required": [name]} for name in body.fields],
                  "description": "At least one field to update; an empty object is a 400."}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def servers(loop_url: str | None) -> list[dict[str, str]]:
    """The server this document came from (``LOOP_URL``)."""
    return [{"url": (loop_url or "http://localhost:5667").rstrip("/"), "description": "This Loop (LOOP_URL)"}]


# ------------------------------------------- inline bodies for Op(response_body=...)
OBJECT: dict[str, Any] = {"type": "object"}
STRING: dict[str, Any] = {"type": "string"}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def wrapped(data: Mapping[str, Any], total: bool = False) -> dict[str, Any]:
    """``{data}`` (or ``{data: [...], total}`` with ``total``) around an inline schema."""
    if total:
        return {"type": "object", "properties": {"data": {"type": "array", "items": dict(data)},
                                                 "total": {"type": "integer"}}, "required": ["data", "total"]}
    return {"type": "object", "properties": {"data": dict(data)}, "required": ["data"]}


def obj(**props: Mapping[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties required (more are allowed)."""
    return {"type": "object", "properties": {k: dict(v) for k, v in props.items()}, "required": list(props)}
