"""OpenAPI 3.1 document generated from the route table and the row codecs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from api.http import Route
from loop import models

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


def document(routes: Iterable[Route], version: str, entities: Entities | None = None) -> dict[str, Any]:
    """The document for ``routes``; ``entities`` are the row schemas the subsystems add to the core ones."""
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(_path(route.path), {})
        params = re.findall(r"\{(\w+)\}", route.path)
        for op in route.ops:
            o: dict[str, Any] = {
                "tags": [op.tag],
                "summary": op.summary,
                "operationId": f"{op.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', route.path).strip('_')}",
                "responses": {
                    str(code): ({"description": desc} if code in (204,) or not op.response_schema else {
                        "description": desc,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.response_schema}"}}}
                        if code < 300 else {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    })
                    for code, desc in op.responses.items()
                },
            }
            parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
            if op.query is not None:
                parameters += op.query.openapi()
            if parameters:
                o["parameters"] = parameters
            if op.body is not None:
                o["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": op.body.openapi()}}}
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
        "servers": [{"url": "http://localhost:5667", "description": "Local development"},
                    {"url": "https://api.looped.me", "description": "Production"}],
        "tags": [{"name": t} for t in TAGS],
        "paths": paths,
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
    }
