"""Values are stored whole (one hash field each); descriptions an older Loop stored in 64-byte
pieces (``description``, ``description~1``...) still read whole, and a rewrite removes the pieces.
Issue hashes stay in Redis's compact encoding at the recommended ``hash-max-listpack-value``,
which the start-up check asks for."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from loop import models
from loop.health import check_redis_config
from loop.models import ISSUE_FIELDS
from loop.store import RedisStore
from loop.tunables import REDIS_HASH_VALUE_BYTES


def older_loops_pieces(value: str) -> dict[str, str]:
    """The hash fields an older Loop wrote for a description: pieces of at most 64 bytes, cut on
    UTF-8 character boundaries (at most 16; longer values were stored whole)."""
    data = value.encode()
    if len(data) <= 64 or len(data) > 64 * 16:
        return {"description": value}
    out: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + 64, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        out.append(data[start:end].decode())
        start = end
    return {"description" if i == 0 else f"description~{i}": p for i, p in enumerate(out)}


def test_a_long_description_is_stored_whole_in_one_hash_field(store: RedisStore) -> None:
    text = "Steps to reproduce: " + "step é " * 60
    issue = store.issues.create({"title": "t", "type": "task", "description": text})
    raw = store.r.hgetall(store.keys.issue(issue["id"]))
    assert [f for f in raw if f.startswith("description")] == ["description"]
    assert raw["description"] == text


@given(st.text(max_size=1200), st.text(max_size=1200))
def test_encoding_then_decoding_a_row_gives_the_row_back(title: str, description: str) -> None:
    row = {"id": "a" * 24, "title": title, "description": description}
    encoded = models.encode(ISSUE_FIELDS, row)
    assert encoded == row  # strings are stored as they are, whole
    assert {k: v for k, v in models.decode(ISSUE_FIELDS, encoded).items() if v is not None} == row


@given(st.text(max_size=1100))
def test_a_description_an_older_loop_stored_in_pieces_decodes_whole(value: str) -> None:
    raw = {"id": "a" * 24, **older_loops_pieces(value)}
    assert models.decode(ISSUE_FIELDS, raw)["description"] == value


def test_pieces_after_a_gap_are_not_joined() -> None:
    raw = {"description": "a", "description~1": "b", "description~3": "d"}
    assert models.decode(ISSUE_FIELDS, raw)["description"] == "ab"


def legacy_issue(store: RedisStore, text: str, **data: Any) -> str:
    """An issue whose description is laid out as an older Loop wrote it."""
    issue = store.issues.create({"title": "t", "type": "task", **data})
    store.r.hset(store.keys.issue(issue["id"]), mapping=older_loops_pieces(text))
    return str(issue["id"])


def test_every_reader_of_an_older_pieced_description_sees_it_whole(store: RedisStore) -> None:
    text = "Steps to reproduce: " + "step é " * 60
    parent = legacy_issue(store, text, type="plan")
    child = store.issues.create({"title": "child", "type": "task", "status": "todo", "parentId": parent})
    assert (store.issues.get(parent) or {})["description"] == text
    # The prompt context reads the parent through its script, then the models codec.
    assert store.prompts.facts(store.issues.get(child["id"])).variables["parent"]["description"] == text
    store.issues.update(child["id"], {"status": "backlog"})
    legacy_issue(store, text, status="todo")
    body = store.dispatch.next("agent")  # the claim script hands back the whole hash
    assert body is not None and text in body["prompt"]


@pytest.mark.parametrize("new", ["short", "x" * 300, None])
def test_rewriting_an_older_pieced_description_removes_its_pieces(store: RedisStore, new: str | None) -> None:
    issue_id = legacy_issue(store, "z" * 899 + "!")
    store.issues.update(issue_id, {"description": new})
    raw = store.r.hgetall(store.keys.issue(issue_id))
    assert [f for f in raw if f.startswith("description")] == ([] if new is None else ["description"])
    assert (store.issues.get(issue_id) or {})["description"] == new


def test_an_update_that_keeps_the_description_leaves_the_hash_s_fields_alone(store: RedisStore) -> None:
    issue_id = legacy_issue(store, "z" * 199 + "!")
    store.issues.update(issue_id, {"title": "renamed"})
    raw = store.r.hgetall(store.keys.issue(issue_id))
    assert sorted(f for f in raw if f.startswith("description")) == ["description", "description~1",
                                                                       "description~2", "description~3"]
    assert (store.issues.get(issue_id) or {})["description"] == "z" * 199 + "!"


def test_a_typical_issue_hash_stays_compact_at_the_recommended_redis_setting(private_store: RedisStore) -> None:
    store = private_store
    store.r.config_set("hash-max-ziplist-value", str(REDIS_HASH_VALUE_BYTES))  # the 6.2 name; 7.x aliases it
    assert not [w for w in check_redis_config(store.r) if "hash-max" in w]
    text = "word " * 40 + "é" * 30
    issue = store.issues.create({"title": "A title well over sixty-four bytes, as real issue titles often are",
                                 "type": "task", "description": text})
    store.issues.update(issue["id"], {"agentSummary": "Done: " + "details " * 50})
    assert store.r.object("encoding", store.keys.issue(issue["id"])) in ("listpack", "ziplist")
    assert (store.issues.get(issue["id"]) or {})["description"] == text


def test_the_start_up_check_asks_for_the_recommended_compact_hash_setting(private_store: RedisStore) -> None:
    store = private_store
    store.r.config_set("hash-max-ziplist-value", "64")  # Redis's default
    warnings = [w for w in check_redis_config(store.r) if "hash-max-listpack-value" in w]
    assert len(warnings) == 1 and "is 64" in warnings[0] and f"value {REDIS_HASH_VALUE_BYTES}" in warnings[0]


class _NoConfig:
    """A managed Redis that answers INFO but refuses CONFIG."""

    def info(self, section: str) -> dict[str, Any]:
        return {"maxmemory_policy": "noeviction", "aof_enabled": 1}

    def config_get(self, name: str) -> dict[str, str]:
        raise redis.ResponseError("unknown command 'CONFIG'")


def test_a_redis_that_refuses_config_gets_no_compact_hash_warning() -> None:
    assert check_redis_config(_NoConfig()) == []
