"""Contract 0.6 (CORS), 1.1 (system), 2 (auth), improvements 9 (Idempotency-Key) and 11 (named keys),
the body size limit and Redis outages."""

from __future__ import annotations

import io
import re
from typing import Any

import falcon.testing
import pytest

from api.app import create_app
from loop.runtime import build
from loop.store import connect
from tests.conftest import API_KEY, keys_of
from tests.redis_server import free_port

ALLOWED = ("http://localhost:5668", "https://app.looped.me")
ISSUE = {"title": "An issue", "type": "task"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ----------------------------------------------------------------------------- system routes
def test_root_names_the_service_without_a_key(client):
    r = client.get("/", auth=False)
    assert (r.status_code, r.json) == (200, {"name": "Loop API", "version": "0.1.0"})


def test_health_pings_redis_and_answers_without_a_key(client):
    r = client.get("/health", auth=False)
    assert (r.status_code, r.json) == (200, {"ok": True, "service": "loop-api",
                                             "timestamp": "2026-02-20T12:00:00.000Z"})


def test_health_is_503_with_a_json_reason_when_redis_is_unreachable(settings, clock):
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    client = falcon.testing.TestClient(create_app(build(dead, settings, clock), clock, settings))
    r = client.simulate_get("/health")
    assert r.status_code == 503
    assert r.json["ok"] is False and r.json["service"] == "loop-api"
    assert r.json["error"] == "Redis is unreachable: ConnectionError"
    r = client.simulate_get("/api/issues", headers=bearer(API_KEY))
    assert (r.status_code, r.json) == (503, {"error": "Redis is unavailable; retry later",
                                             "details": {"redis": ["unreachable"]}})
    assert r.headers["Retry-After"] == "5"
    r = client.simulate_post("/api/issues", headers=bearer(API_KEY), json=ISSUE)
    assert r.status_code == 503


def test_unknown_routes_are_json_404s_and_unsupported_methods_405s(client):
    r = client.get("/nope", auth=False)
    assert (r.status_code, r.json) == (404, {"error": "Not found"})
    r = client.get("/api/nope")
    assert (r.status_code, r.json) == (404, {"error": "Not found"})
    r = client.request("PUT", "/api/issues")
    assert r.status_code == 405 and r.json == {"error": "Method PUT not allowed on /api/issues"}


# ----------------------------------------------------------------------------- bearer auth
@pytest.mark.parametrize("header", [None, "", "Basic bG9vcA==", f"bearer {API_KEY}", f"Bearer{API_KEY}", API_KEY,
                                    f"Token {API_KEY}"])
def test_a_missing_or_malformed_authorization_header_is_a_401(client, store, header):
    headers = {} if header is None else {"Authorization": header}
    before = keys_of(store)
    for method, path in (("GET", "/api/issues"), ("POST", "/api/issues"), ("GET", "/api/no-such-route")):
        r = client.request(method, path, auth=False, headers=headers, json=ISSUE)
        assert (r.status_code, r.json) == (401, {"error": "Missing or malformed Authorization header"}), path
    assert keys_of(store) == before


@pytest.mark.parametrize("token", ["wrong", API_KEY + "x", API_KEY[:-1], " " + API_KEY, "loop_" + "a" * 64])
def test_a_wrong_key_is_a_401_even_before_routing(client, store, token):
    before = keys_of(store)
    for method, path in (("GET", "/api/issues"), ("POST", "/api/issues"), ("GET", "/api/no-such-route")):
        r = client.request(method, path, auth=False, headers=bearer(token), json=ISSUE)
        assert (r.status_code, r.json) == (401, {"error": "Invalid API key"}), path
    assert keys_of(store) == before


def test_public_routes_need_no_key(client):
    for path in ("/", "/health", "/api/openapi.json"):
        assert client.get(path, auth=False).status_code == 200, path


# ----------------------------------------------------------------------------- named keys (improvement 11)
def test_a_named_key_is_created_once_listed_without_its_secret_and_authenticates(client, store):
    r = client.post("/api/keys", json={"name": "agent-1"})
    assert r.status_code == 201
    created = r.json["data"]
    assert set(created) == {"id", "name", "createdAt", "prefix", "key"}
    assert re.fullmatch(r"loop_[a-f0-9]{64}", created["key"]) and created["key"].startswith(created["prefix"])
    assert created["name"] == "agent-1" and created["createdAt"] == "2026-02-20T12:00:00.000Z"
    r = client.get("/api/keys")
    assert r.json == {"data": [{k: v for k, v in created.items() if k != "key"}], "total": 1}
    assert client.get("/api/issues", auth=False, headers=bearer(created["key"])).status_code == 200
    # only a digest is stored: the secret appears nowhere in Redis
    dump = "".join(str(store.r.hgetall(k)) for k in keys_of(store) if store.r.type(k) == "hash")
    assert created["key"] not in dump and created["key"][5:] not in dump


def test_only_the_bootstrap_key_manages_keys(client, store):
    secret = client.post("/api/keys", json={"name": "agent-1"}).json["data"]["key"]
    before = keys_of(store)
    error = {"error": "Only the bootstrap key (LOOP_API_KEY) may manage API keys"}
    for method, path in (("GET", "/api/keys"), ("POST", "/api/keys"), ("DELETE", "/api/keys/agent-1")):
        r = client.request(method, path, auth=False, headers=bearer(secret), json={"name": "agent-2"})
        assert (r.status_code, r.json) == (403, error), method
    assert keys_of(store) == before
    assert client.get("/api/keys", auth=False).status_code == 401


def test_a_revoked_key_no_longer_authenticates_and_its_name_is_free_again(client):
    first = client.post("/api/keys", json={"name": "agent-1"}).json["data"]
    other = client.post("/api/keys", json={"name": "agent-2"}).json["data"]
    r = client.delete(f"/api/keys/{first['id']}")
    assert r.status_code == 204 and r.content == b""
    r = client.get("/api/issues", auth=False, headers=bearer(first["key"]))
    assert (r.status_code, r.json) == (401, {"error": "Invalid API key"})
    assert client.get("/api/issues", auth=False, headers=bearer(other["key"])).status_code == 200
    assert client.delete("/api/keys/agent-2").status_code == 204  # by name
    assert client.get("/api/keys").json == {"data": [], "total": 0}
    assert client.post("/api/keys", json={"name": "agent-1"}).status_code == 201
    r = client.delete(f"/api/keys/{first['id']}")
    assert (r.status_code, r.json) == (404, {"error": "API key not found"})


def test_key_names_are_unique_validated_and_bootstrap_is_reserved(client, store):
    client.post("/api/keys", json={"name": "agent-1"})
    before = keys_of(store)
    for body, status, error in (
        ({"name": "agent-1"}, 409, "API key name already exists"),
        ({"name": "bootstrap"}, 409, "The key name 'bootstrap' is reserved"),
        ({}, 400, "Invalid request: name is required."),
        ({"name": "has space"}, 400, None),
        ({"name": "x" * 101}, 400, "Invalid request: name must be at most 100 characters."),
    ):
        r = client.post("/api/keys", json=body)
        assert r.status_code == status, body
        if error:
            assert r.json["error"] == error
    assert keys_of(store) == before


# ----------------------------------------------------------------------------- CORS (0.6)
@pytest.mark.parametrize("origin", ALLOWED)
def test_allowed_origins_are_reflected_on_responses_including_errors(client, origin):
    r = client.get("/api/issues", headers={"Origin": origin})
    assert r.headers["Access-Control-Allow-Origin"] == origin and "Origin" in r.headers["Vary"]
    r = client.get("/api/issues", auth=False, headers={"Origin": origin})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:5667", "https://app.looped.me.evil"])
def test_other_origins_get_no_cors_headers(client, origin):
    r = client.get("/api/issues", headers={"Origin": origin})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    r = client.request("OPTIONS", "/api/issues", auth=False,
                       headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in r.headers and "Access-Control-Allow-Methods" not in r.headers


@pytest.mark.parametrize("path", ["/api/issues", "/api/issues/abc", "/api/no-such-route", "/health"])
def test_a_preflight_is_a_204_answered_before_auth(client, store, path):
    before = keys_of(store)
    r = client.request("OPTIONS", path, auth=False, headers={
        "Origin": ALLOWED[0], "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED[0]
    methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods >= {"GET", "POST", "PATCH", "DELETE", "OPTIONS"}
    headers = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert headers >= {"authorization", "content-type", "idempotency-key"}
    assert r.headers["Access-Control-Max-Age"] == "86400"
    assert keys_of(store) == before


# ----------------------------------------------------------------------------- Idempotency-Key (improvement 9)
def test_a_repeated_idempotency_key_replays_the_response_and_acts_once(client):
    h = {"Idempotency-Key": "k-1"}
    first = client.post("/api/issues", json=ISSUE, headers=h)
    second = client.post("/api/issues", json=ISSUE, headers=h)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content and second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Content-Type"] == "application/json"
    assert client.get("/api/issues").json["total"] == 1
    third = client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "k-2"})
    assert third.status_code == 201 and third.json["data"]["id"] != first.json["data"]["id"]
    assert client.get("/api/issues").json["total"] == 2
    assert client.post("/api/issues", json=ISSUE).json["data"]["number"] == 3  # no key: acts


def test_the_same_key_with_a_different_body_is_a_422_and_acts_not(client, store):
    client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "k-1"})
    before = keys_of(store)
    r = client.post("/api/issues", json={**ISSUE, "title": "other"}, headers={"Idempotency-Key": "k-1"})
    assert (r.status_code, r.json) == (422, {"error": "This Idempotency-Key was already used with a different "
                                                      "request body"})
    assert keys_of(store) == before and client.get("/api/issues").json["total"] == 1


def test_patch_and_delete_replays_return_the_first_response(client, clock):
    issue = client.post("/api/issues", json=ISSUE).json["data"]
    p1 = client.patch(f"/api/issues/{issue['id']}", json={"title": "B"}, headers={"Idempotency-Key": "p"})
    client.patch(f"/api/issues/{issue['id']}", json={"title": "C"})
    clock.advance(10)
    p2 = client.patch(f"/api/issues/{issue['id']}", json={"title": "B"}, headers={"Idempotency-Key": "p"})
    assert (p2.status_code, p2.content) == (200, p1.content)
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["title"] == "C"
    d1 = client.delete(f"/api/issues/{issue['id']}", headers={"Idempotency-Key": "d"})
    d2 = client.delete(f"/api/issues/{issue['id']}", headers={"Idempotency-Key": "d"})
    assert (d1.status_code, d2.status_code, d2.content) == (204, 204, b"")
    assert client.delete(f"/api/issues/{issue['id']}").status_code == 404


def test_idempotency_keys_are_scoped_to_the_api_key_and_the_path(client):
    secret = client.post("/api/keys", json={"name": "agent-1"}).json["data"]["key"]
    a = client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "same"})
    b = client.post("/api/issues", json=ISSUE, auth=False, headers={**bearer(secret), "Idempotency-Key": "same"})
    assert b.status_code == 201 and b.json["data"]["id"] != a.json["data"]["id"]
    c = client.post("/api/projects", json={"name": "P"}, headers={"Idempotency-Key": "same"})
    assert c.status_code == 201 and "name" in c.json["data"]


def test_a_replayed_error_response_keeps_its_status_and_body(client):
    h = {"Idempotency-Key": "bad"}
    first = client.post("/api/issues", json={"title": "t"}, headers=h)
    second = client.post("/api/issues", json={"title": "t"}, headers=h)
    assert first.status_code == second.status_code == 400 and first.content == second.content


def test_stored_responses_expire_after_24_hours(client, store):
    client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "k"})
    idem = [k for k in keys_of(store) if ":idem:" in k]
    assert len(idem) == 1 and 24 * 3600 - 5 <= store.r.ttl(idem[0]) <= 24 * 3600


def test_a_server_error_is_not_stored_so_a_retry_acts(client, store, monkeypatch):
    real = store.issues.create
    calls = []

    def flaky(data: Any, extra: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(data, extra)

    monkeypatch.setattr(store.issues, "create", flaky)
    h = {"Idempotency-Key": "retry-me"}
    assert client.post("/api/issues", json=ISSUE, headers=h).status_code == 500
    r = client.post("/api/issues", json=ISSUE, headers=h)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers


def test_get_requests_ignore_idempotency_keys_and_overlong_keys_are_a_400(client, store):
    assert client.get("/api/issues", headers={"Idempotency-Key": "g"}).status_code == 200
    before = keys_of(store)
    r = client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "k" * 256})
    assert (r.status_code, r.json["error"]) == (400, "Idempotency-Key must be at most 255 characters")
    assert keys_of(store) == before


# ----------------------------------------------------------------------------- body size limit
class NoReadStream(io.BytesIO):
    """A request body that fails the test if the app reads it."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read")

    readline = read  # type: ignore[assignment]


def _env(app_settings: Any, body: Any, length: int | None, **extra: Any) -> dict[str, Any]:
    env = falcon.testing.create_environ(path="/api/issues", method="POST",
                                        headers={**bearer(API_KEY), "Content-Type": "application/json",
                                                 **({"Idempotency-Key": "big"} if extra.pop("idem", False) else {})})
    env["wsgi.input"] = body
    env.pop("CONTENT_LENGTH", None)
    if length is not None:
        env["CONTENT_LENGTH"] = str(length)
    env.update(extra)
    return env


def _call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    start = falcon.testing.StartResponseMock()
    out = b"".join(app(env, start))
    return start.status, dict(start.headers), out


def test_a_declared_length_over_the_limit_is_a_413_without_reading_the_body(app, store, settings):
    before = keys_of(store)
    status, _, out = _call(app, _env(settings, NoReadStream(), settings.max_body_bytes + 1, idem=True))
    assert status.startswith("413")
    assert out == b'{"error":"Request body exceeds the limit of 65536 bytes"}'
    assert keys_of(store) == before


def test_an_oversized_body_is_a_413_and_writes_nothing(client, store, settings):
    before = keys_of(store)
    big = {**ISSUE, "description": "x" * settings.max_body_bytes}
    for headers in ({}, {"Idempotency-Key": "big"}):
        r = client.post("/api/issues", json=big, headers=headers)
        assert (r.status_code, r.json) == (413, {"error": "Request body exceeds the limit of 65536 bytes"})
    assert keys_of(store) == before
    ok = {**ISSUE, "description": "x" * (settings.max_body_bytes - 100)}
    assert client.post("/api/issues", json=ok).status_code == 201


@pytest.mark.parametrize("idem", [False, True])
def test_a_chunked_body_without_a_length_is_read_up_to_the_limit_only(app, store, settings, idem):
    before = keys_of(store)
    body = b'{"title": "t", "type": "task", "description": "' + b"x" * (settings.max_body_bytes * 4) + b'"}'
    stream = io.BytesIO(body)
    status, _, out = _call(app, _env(settings, stream, None, idem=idem, **{"wsgi.input_terminated": True}))
    assert status.startswith("413") and b"exceeds the limit" in out
    assert stream.tell() <= settings.max_body_bytes + 1
    assert keys_of(store) == before


def test_a_small_chunked_body_without_a_length_is_parsed(app, store, settings):
    stream = io.BytesIO(b'{"title": "chunked", "type": "task"}')
    status, _, out = _call(app, _env(settings, stream, None, **{"wsgi.input_terminated": True}))
    assert status.startswith("201") and b'"title":"chunked"' in out


def test_a_key_whose_first_request_is_still_running_is_a_409(client, store):
    import hashlib
    import json

    body = json.dumps(ISSUE).encode()
    state, _ = store.idempotency.begin("bootstrap", "POST", "/api/issues", "busy", hashlib.sha256(body).hexdigest())
    assert state == "new"
    before = keys_of(store)
    r = client.post("/api/issues", body=body, headers={"Idempotency-Key": "busy", "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (409, {"error": "A request with this Idempotency-Key is still in progress"})
    assert keys_of(store) == before


def test_an_invalid_content_length_is_a_json_400(app, store, settings):
    before = keys_of(store)
    status, headers, out = _call(app, _env(settings, io.BytesIO(b"{}"), "abc"))  # type: ignore[arg-type]
    assert status.startswith("400") and headers["content-type"] == "application/json"
    assert b'"error":' in out and b"Content-Length" in out
    assert keys_of(store) == before
