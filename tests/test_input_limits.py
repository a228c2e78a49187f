"""Input the store cannot encode is refused at the edge (issue 10, item 11): integers beyond
signed 64 bits and JSON nested deeper than orjson writes back out, with 400 and no write."""

from __future__ import annotations

import orjson
import pytest

from loop.schema import MAX_JSON_DEPTH, json_depth
from tests.conftest import keys_of
from tests.fixtures.webhooks import github_headers, open_queue
from workers.signals import normalize_delivery


@pytest.fixture
def rq_queue(settings):
    yield from open_queue(settings)


def nested(depth: int) -> dict:
    """A JSON object ``depth`` levels deep (the outermost object counts as one)."""
    value: dict = {"leaf": "x"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def an_issue(client) -> str:
    r = client.post("/api/issues", json={"title": "Ship it", "type": "task"})
    assert r.status_code == 201, r.text
    return str(r.json["data"]["id"])


def test_json_depth_counts_the_outermost_container_as_one_level():
    assert json_depth(5) == 0
    assert json_depth({}) == 1
    assert json_depth([[], {"a": [1]}]) == 3
    assert json_depth(nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH


@pytest.mark.parametrize("number", ["18446744073709551621", "9223372036854775808", "-18446744073709551621"])
def test_a_pull_request_number_beyond_signed_64_bits_gets_400_naming_the_field_and_changes_nothing(
        client, store, number):
    issue_id = an_issue(client)
    before = keys_of(store)
    body = '{"pullRequests": [{"number": ' + number + ', "title": "Fix"}]}'
    r = client.patch(f"/api/issues/{issue_id}", body=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "pullRequests.0.number" in r.json["details"]
    assert keys_of(store) == before
    assert client.get(f"/api/issues/{issue_id}").json["data"]["pullRequests"] is None


def test_a_pull_request_number_of_int64_max_round_trips(client):
    issue_id = an_issue(client)
    body = '{"pullRequests": [{"number": 9223372036854775807, "title": "Fix"}]}'
    r = client.patch(f"/api/issues/{issue_id}", body=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/issues/{issue_id}").json["data"]["pullRequests"][0]["number"] == 2**63 - 1


def test_a_query_integer_beyond_64_bits_gets_400(client):
    r = client.get("/api/issues?priority=99999999999999999999999")
    assert r.status_code == 400
    assert "priority" in r.json["details"]


def test_a_signed_webhook_nested_deeper_than_the_store_can_encode_gets_400_and_queues_nothing(
        client, store, rq_queue):
    body = orjson.dumps(nested(MAX_JSON_DEPTH + 1))
    before = keys_of(store)
    r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", "deep-1"), auth=False)
    assert r.status_code == 400, r.text
    assert r.json["details"] == {"body": [f"must not nest deeper than {MAX_JSON_DEPTH} levels"]}
    assert keys_of(store) == before
    assert rq_queue.count == 0


def test_a_signed_webhook_at_the_depth_limit_is_normalized_and_served_back(client, store, rq_queue):
    body = orjson.dumps({**nested(MAX_JSON_DEPTH), "action": "opened"})
    r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", "deep-2"), auth=False)
    assert r.status_code == 202, r.text
    result = normalize_delivery(rq_queue.jobs[0].args[0], client=store.r)
    assert result["status"] == "created"
    listed = client.get("/api/signals")
    assert listed.status_code == 200
    assert json_depth(listed.json["data"][0]["payload"]) == MAX_JSON_DEPTH
    assert client.get("/api/issues?type=signal").status_code == 200
    assert client.get(f"/api/issues/{result['issueId']}").status_code == 200


def test_a_signal_payload_nested_too_deep_gets_400_and_changes_nothing(client, store):
    before = keys_of(store)
    r = client.post("/api/signals", json={"source": "x", "type": "y", "severity": "low",
                                          "payload": nested(MAX_JSON_DEPTH + 1)})
    assert r.status_code == 400, r.text
    assert "payload" in r.json["details"]
    assert keys_of(store) == before


def test_an_issue_signal_payload_nested_too_deep_gets_400_and_changes_nothing(client, store):
    before = keys_of(store)
    r = client.post("/api/issues", json={"title": "t", "type": "task", "signalPayload": nested(MAX_JSON_DEPTH + 1)})
    assert r.status_code == 400, r.text
    assert "signalPayload" in r.json["details"]
    assert keys_of(store) == before
