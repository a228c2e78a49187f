"""The OpenAPI document says what the server does: envelopes, errors, the empty-PATCH rule, servers,
OPTIONS; and ``GET /api/docs`` renders it (the response bodies themselves: tests/test_schemathesis.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from typing import Any

import jsonschema
import pytest

from api.app import OPENAPI_PATH, create_app
from tests.conftest import Client, keys_of

METHODS = ("get", "post", "patch", "delete")


@pytest.fixture
def doc(client: Client) -> dict[str, Any]:
    return dict(client.get(OPENAPI_PATH, auth=False).json)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        section, name = node["$ref"].removeprefix("#/components/").split("/")
        return dict(doc["components"][section][name])
    return node


def test_options_on_a_label_advertises_only_the_methods_it_serves(client):
    label = client.post("/api/labels", json={"name": "x", "color": "red"}).json["data"]
    r = client.request("OPTIONS", f"/api/labels/{label['id']}")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "PATCH" not in allowed and {"GET", "DELETE"} <= allowed
    assert client.patch(f"/api/labels/{label['id']}", json={"name": "y"}).status_code == 405


def test_servers_name_the_configured_loop_url(store, clock, settings):
    app = create_app(store, clock, dataclasses.replace(settings, loop_url="https://loop.example.com/"))
    doc = Client(app).get(OPENAPI_PATH, auth=False).json
    assert [s["url"] for s in doc["servers"]] == ["https://loop.example.com"]


def test_every_keyed_operation_documents_401_and_every_operation_503_with_retry_after(doc):
    for path, method, op in operations(doc):
        if op.get("security"):
            assert "401" in op["responses"], (method, path)
        unavailable = resolve(doc, op["responses"]["503"])
        assert "Retry-After" in unavailable["headers"], (method, path)


def test_operations_with_a_body_document_400_and_413_and_writes_document_the_idempotency_errors(doc):
    for path, method, op in operations(doc):
        if "requestBody" in op:
            assert {"400", "413"} <= set(op["responses"]), (method, path)
        if method in ("post", "patch", "delete"):
            assert {"409", "422"} <= set(op["responses"]), (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)


def test_every_2xx_answer_with_a_body_has_a_schema(doc):
    for path, method, op in operations(doc):
        for code, response in op["responses"].items():
            if code.startswith("2") and code != "204":
                [(media, content)] = response["content"].items()
                assert content["schema"], (method, path, code)


def test_collection_lists_are_documented_with_their_data_and_total_envelope(doc, client):
    schema = doc["paths"]["/api/issues"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["data", "total"] and schema["properties"]["data"]["type"] == "array"
    item = doc["paths"]["/api/issues/{issue_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert item["required"] == ["data"]


def test_the_claim_answer_of_dispatch_next_is_documented_and_matches_a_real_claim(doc, client):
    client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo"})
    schema = doc["paths"]["/api/dispatch/next"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(client.get("/api/dispatch/next").json, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"data": {}}, schema)


def test_an_empty_patch_is_refused_by_the_document_and_by_the_server(doc, client, store):
    issue = client.post("/api/issues", json={"title": "t", "type": "task"}).json["data"]
    for _, method, op in operations(doc):
        if method == "patch":
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate({}, schema)
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate({"notAField": 1}, schema)
    patch = doc["paths"]["/api/issues/{issue_id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate({"title": "u"}, patch)
    before = keys_of(store)
    r = client.patch(f"/api/issues/{issue['id']}", json={})
    assert r.status_code == 400 and "at least one field" in r.json["error"]
    assert keys_of(store) == before


def test_the_api_reference_page_is_public_self_contained_html(client):
    r = client.get("/api/docs", auth=False)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "/api/openapi.json" in r.text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", r.text), "no CDN or other origin"


NODE_RENDER = """
const fs = require("fs");
const [page, doc] = [fs.readFileSync(0, "utf8"), JSON.parse(process.argv[1])];
const nodes = {};
global.document = {getElementById: id => (nodes[id] = nodes[id] || {innerHTML: "", textContent: ""})};
global.fetch = async url => ({json: async () => doc});
eval(page.split("<script>")[1].split("</script>")[0]);
setTimeout(() => process.stdout.write(nodes.ops.innerHTML), 50);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_api_reference_page_script_lists_every_operation_of_the_document(client, doc):
    page = client.get("/api/docs", auth=False).text
    out = subprocess.run(["node", "-e", NODE_RENDER, json.dumps(doc)], input=page, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    listed = set(re.findall(r"data-op='([A-Z]+ [^']+)'", out))
    assert listed == {f"{m.upper()} {p}" for p, m, _ in operations(doc)}
    assert "<h2>Issues</h2>" in out and "<h2>Schemas</h2>" in out
