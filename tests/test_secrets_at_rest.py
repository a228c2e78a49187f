"""Issue 10.2: no response carrying a secret is stored. ``POST /api/keys`` is ``Op(secret=True)``:
with an Idempotency-Key its new key never reaches Redis in clear, and a replay answers 409 with the
key's id and name (no secret) without minting a second key."""

from __future__ import annotations

from typing import Any

from api.middleware import SECRET_REPLAYED
from tests.conftest import keys_of


def _values(store: Any) -> list[str]:
    """Every stored value of the namespace, whatever its type (and the key names themselves)."""
    r, out = store.r, []
    for key in keys_of(store):
        out.append(key)
        kind = r.type(key)
        if kind == "string":
            out.append(r.get(key))
        elif kind == "hash":
            out.extend(f"{f}={v}" for f, v in r.hgetall(key).items())
        elif kind == "set":
            out.extend(r.smembers(key))
        elif kind == "zset":
            out.extend(m for m, _ in r.zrange(key, 0, -1, withscores=True))
        elif kind == "list":
            out.extend(r.lrange(key, 0, -1))
        else:
            raise AssertionError(f"unexpected type {kind} of {key}")
    return out


def _create(client: Any, name: str = "ci-bot", key: str = "idem-1") -> Any:
    return client.post("/api/keys", json={"name": name}, headers={"Idempotency-Key": key})


def test_a_new_api_key_created_with_an_idempotency_key_appears_nowhere_in_redis(client, store):
    r = _create(client)
    assert r.status_code == 201
    secret = r.json["data"]["key"]
    assert len(secret) > 20
    values = _values(store)
    assert any(":idem:" in v for v in values)  # the Idempotency-Key record exists, without the secret
    assert not [v for v in values if secret in v]


def test_replaying_the_creation_answers_409_with_the_key_id_and_name_and_mints_no_second_key(client, store):
    first = _create(client).json["data"]
    before = keys_of(store), store.r.hgetall(store.keys.apikeys())
    r = _create(client)
    assert r.status_code == 409 and r.headers["Idempotent-Replayed"] == "true"
    assert r.json == {"error": SECRET_REPLAYED,
                      "key": {"id": first["id"], "name": "ci-bot", "createdAt": first["createdAt"],
                              "prefix": first["prefix"]}}
    assert first["key"] not in r.text
    assert (keys_of(store), store.r.hgetall(store.keys.apikeys())) == before
    assert [k["name"] for k in client.get("/api/keys").json["data"]] == ["ci-bot"]


def test_the_created_key_still_works_after_a_replay(client):
    secret = _create(client).json["data"]["key"]
    _create(client)
    assert client.get("/api/issues", auth=False, headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_failed_key_creations_replay_as_stored_and_other_operations_still_replay_their_body(client):
    _create(client, key="a")
    taken = _create(client, key="b")
    assert taken.status_code == 409 and taken.json == {"error": "API key name already exists"}
    again = _create(client, key="b")
    assert (again.status_code, again.json, again.headers["Idempotent-Replayed"]) == (409, taken.json, "true")
    issue = {"title": "t", "type": "task"}
    one = client.post("/api/issues", json=issue, headers={"Idempotency-Key": "i"})
    two = client.post("/api/issues", json=issue, headers={"Idempotency-Key": "i"})
    assert (two.status_code, two.content) == (201, one.content)


def test_the_openapi_document_names_the_409_a_replayed_key_creation_gets(client):
    op = client.get("/api/openapi.json").json["paths"]["/api/keys"]["post"]
    assert "secret not shown again" in op["responses"]["409"]["description"]
