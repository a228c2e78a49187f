"""A claim response stays small whatever the signal payload (issue 10, item 10): prompts show
a bounded excerpt of the payload with a pointer to the full signal."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from loop.prompts.payload import MAX_BYTES, MAX_DEPTH, TRUNCATED_KEY, excerpt
from loop.schema import MAX_JSON_DEPTH, json_depth


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, max_body_bytes=1024 * 1024)


def deep_payload(depth: int = MAX_JSON_DEPTH, filler: int = 400) -> dict:
    """~99 KB nested ``depth`` levels, a filler string at every level (the reported case)."""
    value: dict = {"leaf": "end"}
    for level in range(depth - 1):
        value = {"message": f"level {level} " + "x" * filler, "inner": value}
    return value


def pointer(url: str) -> str:
    return f"The full payload: {url}"


def test_a_small_payload_is_shown_whole():
    payload = {"message": "Disk full", "host": "db-1", "tags": ["a", "b"], "count": 3}
    assert excerpt(payload, lambda: pytest.fail("no pointer needed")) == payload


def test_a_deep_large_payload_becomes_a_bounded_excerpt_with_a_pointer_to_the_full_one():
    cut = excerpt(deep_payload(), lambda: "GET /api/signals/abc")
    assert json_depth(cut) <= MAX_DEPTH
    assert len(orjson.dumps(cut, option=orjson.OPT_INDENT_2)) < 2 * MAX_BYTES
    assert cut[TRUNCATED_KEY].endswith(pointer("GET /api/signals/abc"))


def test_the_excerpt_is_deterministic():
    assert excerpt(deep_payload(), lambda: "p") == excerpt(deep_payload(), lambda: "p")


def test_a_wide_payload_is_cut_by_size_with_a_count_of_what_was_left_out():
    cut = excerpt({f"k{i}": "v" * 100 for i in range(1000)}, lambda: "p")
    assert len(orjson.dumps(cut, option=orjson.OPT_INDENT_2)) < 2 * MAX_BYTES
    assert any(v.endswith("more keys") for v in cut.values())


def test_a_claim_of_a_99_kb_signal_nested_250_deep_answers_under_64_kb_with_a_pointer_to_the_signal(client):
    payload = deep_payload()
    assert 95_000 < len(orjson.dumps(payload)) < 110_000
    created = client.post("/api/signals", json={"source": "monitor", "type": "deep", "severity": "high",
                                                "payload": payload})
    assert created.status_code == 201, created.text
    signal_id = created.json["data"]["signal"]["id"]
    r = client.get("/api/dispatch/next")
    assert r.status_code == 200, r.text
    assert len(r.content) < 64 * 1024
    prompt = orjson.loads(r.content)["prompt"]
    assert f"GET http://localhost:5667/api/signals/{signal_id}" in prompt
    # The full payload is still there for whoever follows the pointer.
    assert client.get(f"/api/signals/{signal_id}").json["data"]["payload"] == payload
