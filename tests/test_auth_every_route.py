"""Issue 10.1: authentication is decided by the route that serves a request, never by a path prefix.

Every protected operation of the route table is tried with no key, a wrong key and a revoked key,
under every spelling of its path that the router accepts; none may answer or change anything.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.http import Api
from api.resources import ROUTE_MODULES
from tests.conftest import keys_of

SPELLINGS = (
    lambda p: p,
    lambda p: "/" + p,
    lambda p: "//" + p,
    lambda p: p.replace("/api/", "/api//", 1),
    lambda p: p.replace("/api", "/%61pi", 1),
    lambda p: "/" + p.replace("/api", "/%2Fapi", 1),
    lambda p: p + "/",
    lambda p: p + "//",
)


def protected_operations(store: Any, settings: Any, clock: Any) -> list[tuple[str, str]]:
    api = Api(store, settings, clock)
    ops = []
    for module in ROUTE_MODULES:
        for route in module.routes(api):
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            ops.extend((op.method, path) for op in route.ops if not (op.public or op.webhook))
    return ops


@pytest.fixture
def revoked_key(store: Any) -> str:
    created = store.apikeys.create("soon-revoked")
    store.apikeys.delete(created["id"])
    return str(created["key"])


def test_the_route_table_has_protected_operations_under_api(store, settings, clock):
    ops = protected_operations(store, settings, clock)
    assert len(ops) > 40 and all(path.startswith("/api/") for _, path in ops)


@pytest.mark.parametrize("credential", ["none", "wrong", "revoked"])
def test_no_spelling_of_a_protected_path_answers_without_a_valid_key(client, store, settings, clock,
                                                                     credential, revoked_key):
    headers = {"none": {}, "wrong": {"Authorization": "Bearer loop_wrong"},
               "revoked": {"Authorization": f"Bearer {revoked_key}"}}[credential]
    before = keys_of(store)
    for method, path in protected_operations(store, settings, clock):
        for spell in SPELLINGS:
            spelled = spell(path)
            r = client.request(method, spelled, auth=False, headers=headers,
                               json={"title": "x", "type": "task", "name": "x"})
            assert r.status_code in (401, 403, 404), (method, spelled, r.status_code, r.text[:200])
            assert "data" not in (r.json or {}), (method, spelled)
    assert keys_of(store) == before


def test_a_doubled_slash_reaches_the_resource_once_the_key_is_valid(client):
    # The spellings above are refused for want of a key, not because they route nowhere.
    r = client.post("//api/issues", json={"title": "via //", "type": "task"})
    assert r.status_code == 201
    r = client.get("//api/issues", auth=False)
    assert r.status_code == 401
    r = client.get("///api//dispatch/next", auth=False)
    assert r.status_code == 401


def test_public_routes_stay_public_under_every_spelling(client):
    for path in ("/health", "//health", "/api/openapi.json", "//api/openapi.json"):
        r = client.get(path, auth=False)
        assert r.status_code == 200, path
