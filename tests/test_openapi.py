"""``GET /api/openapi.json``: a valid OpenAPI 3.1 document generated from the app's real routes."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from api import openapi
from api.app import OPENAPI_PATH
from api.http import Op, Route
from loop.schema import Body, Str

METHODS = ("get", "post", "put", "patch", "delete")
BEARER_ERROR = "Missing or malformed Authorization header"


@pytest.fixture
def doc(client) -> dict[str, Any]:
    r = client.get(OPENAPI_PATH, auth=False)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    return dict(r.json)


def registered(app) -> dict[str, Any]:
    """Every URI template the Falcon router really serves, with its resource."""
    found: dict[str, Any] = {}

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if node.resource is not None:
                found[node.uri_template] = node.resource
            walk(node.children)

    walk(app._router._roots)
    return found


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "x", path)


def test_the_document_is_openapi_3_1_with_the_contract_header(doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "Loop API" and doc["info"]["version"] == "0.1.0"
    assert doc["info"]["license"]["name"] == "MIT" and doc["info"]["contact"]["url"] == "https://www.looped.me"
    assert [s["url"] for s in doc["servers"]] == ["http://localhost:5667"]  # settings.loop_url (LOOP_URL)
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    tags = [t["name"] for t in doc["tags"]]
    for tag in ("System", "Issues", "Relations", "Comments", "Projects", "Goals", "Labels", "Signals", "Templates",
                "Prompt Reviews", "Dispatch", "Dashboard", "Webhooks"):
        assert tag in tags
    for name in ("Issue", "Label", "IssueRelation", "Comment", "Goal", "Project", "Error"):
        assert name in doc["components"]["schemas"]


def test_every_served_route_and_method_is_documented_and_nothing_else(app, client, doc):
    served = registered(app)
    served.pop(OPENAPI_PATH)
    # The dashboard's pages (api/ui) are HTML for people, not API operations: not in the document.
    served = {path: res for path, res in served.items() if not path.startswith("/ui")}
    assert set(doc["paths"]) == set(served)
    for path, resource in served.items():
        documented = {m for m in doc["paths"][path] if m in METHODS}
        responders = {m for m in METHODS if hasattr(resource, f"on_{m}")}
        assert documented and documented <= responders, path
        for method in responders - documented:
            # a responder that exists but is not documented must refuse (e.g. PATCH on a label)
            r = client.request(method.upper(), concrete(path), json={"name": "x"})
            assert r.status_code == 405, (method, path)


def test_the_foundation_operations_are_all_present(doc):
    expected = {
        ("/", "get"), ("/health", "get"),
        ("/api/issues", "get"), ("/api/issues", "post"), ("/api/issues/{issue_id}", "get"),
        ("/api/issues/{issue_id}", "patch"), ("/api/issues/{issue_id}", "delete"),
        ("/api/issues/{issue_id}/labels", "post"), ("/api/issues/{issue_id}/labels/{label_id}", "delete"),
        ("/api/issues/{issue_id}/relations", "post"), ("/api/relations/{relation_id}", "delete"),
        ("/api/issues/{issue_id}/comments", "get"), ("/api/issues/{issue_id}/comments", "post"),
        ("/api/projects", "get"), ("/api/projects", "post"), ("/api/projects/{row_id}", "get"),
        ("/api/projects/{row_id}", "patch"), ("/api/projects/{row_id}", "delete"),
        ("/api/goals", "get"), ("/api/goals", "post"), ("/api/goals/{row_id}", "get"),
        ("/api/goals/{row_id}", "patch"), ("/api/goals/{row_id}", "delete"),
        ("/api/labels", "get"), ("/api/labels", "post"), ("/api/labels/{row_id}", "delete"),
        ("/api/keys", "get"), ("/api/keys", "post"), ("/api/keys/{key_id}", "delete"),
    }
    assert expected <= {(p, m) for p, m, _ in operations(doc)}


def test_business_operations_require_bearer_auth_exactly_as_the_server_enforces(client, doc):
    for path, method, op in operations(doc):
        secured = op.get("security") == [{"bearerAuth": []}]
        if path.startswith("/api/") or path == "/metrics":  # /metrics: keyed unless LOOP_METRICS_PUBLIC
            assert secured or "Webhooks" in op["tags"] or "Signals" in op["tags"] or path == "/api/docs", (method, path)
        else:
            assert not secured, (method, path)
        if method != "get" and not secured:
            continue  # never fire unauthenticated writes (webhooks) from a document test
        r = client.request(method.upper(), concrete(path), auth=False)
        rejected = r.status_code == 401 and r.json == {"error": BEARER_ERROR}
        assert rejected == secured, (method, path, r.status_code)


def test_path_parameters_request_bodies_and_queries_are_described(doc):
    for path, method, op in operations(doc):
        names = re.findall(r"\{(\w+)\}", path)
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
        assert set(params) == set(names), (method, path)
        assert all(p["required"] for p in params.values())
        if method in ("post", "patch") and "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert schema["type"] == "object" and schema["properties"], (method, path)
        assert op["responses"], (method, path)
    post = doc["paths"]["/api/issues"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post["required"] == ["title", "type"]
    assert post["properties"]["type"]["enum"] == ["signal", "hypothesis", "plan", "task", "monitor"]
    query = {p["name"]: p["schema"] for p in doc["paths"]["/api/issues"]["get"]["parameters"]}
    assert set(query) >= {"status", "type", "projectId", "labelId", "priority", "parentId", "limit", "offset"}
    assert (query["limit"]["minimum"], query["limit"]["maximum"], query["limit"]["default"]) == (1, 200, 50)


def test_operation_ids_are_unique_and_tags_declared(doc):
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    declared = {t["name"] for t in doc["tags"]}
    assert all(set(op["tags"]) <= declared for _, _, op in operations(doc))


def test_every_schema_is_valid_json_schema_and_every_ref_resolves(doc):
    schemas = doc["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for _, _, op in operations(doc):
        for p in op.get("parameters", []):
            jsonschema.Draft202012Validator.check_schema(p["schema"])
        if "requestBody" in op:
            jsonschema.Draft202012Validator.check_schema(op["requestBody"]["content"]["application/json"]["schema"])

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        section, name = ref.removeprefix("#/components/").split("/")
        assert ref.startswith("#/components/") and name in doc["components"][section], ref


def test_entity_schemas_list_every_wire_field_of_a_real_response(client, doc):
    issue = client.post("/api/issues", json={"title": "t", "type": "task"}).json["data"]
    schema = doc["components"]["schemas"]["Issue"]
    assert set(schema["properties"]) == set(issue) and set(schema["required"]) == set(issue)
    jsonschema.validate(issue, schema)
    label = client.post("/api/labels", json={"name": "n", "color": "c"}).json["data"]
    jsonschema.validate(label, doc["components"]["schemas"]["Label"])


def test_the_document_is_generated_from_the_route_table():
    extra = Route("/api/widgets/{widget_id}", object(), [
        Op("POST", "Make a widget", "Issues", body=Body({"name": Str(required=True)}), responses={201: "Created"}),
    ])
    spec = openapi.document([extra], "9.9.9")
    op = spec["paths"]["/api/widgets/{widget_id}"]["post"]
    assert spec["info"]["version"] == "9.9.9" and op["summary"] == "Make a widget"
    assert op["security"] == [{"bearerAuth": []}]
    assert op["requestBody"]["content"]["application/json"]["schema"]["required"] == ["name"]


def test_entity_schemas_come_from_the_resource_modules_and_building_a_document_changes_no_module_state():
    from api.resources import ROUTE_MODULES

    declared = {name for module in ROUTE_MODULES for name in getattr(module, "ENTITIES", {})}
    assert {"AgentSession", "Signal", "WebhookDelivery", "PromptTemplate", "PromptVersion", "PromptReview"} <= declared
    with_widget = openapi.document([], "1", {"Widget": {"id": "s", "name": "s"}})
    assert with_widget["components"]["schemas"]["Widget"]["required"] == ["id", "name"]
    bare = set(openapi.document([], "1")["components"]["schemas"])
    assert bare == {*openapi.ENTITY_FIELDS, "Error"}  # nothing registered by an import or an earlier call
