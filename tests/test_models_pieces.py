"""Long text fields are stored in pieces of at most 64 bytes so that an issue hash keeps
Redis's compact encoding under the default configuration; reads put them back together."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loop import models
from loop.models import ISSUE_FIELDS, MAX_PIECES, PIECE_BYTES
from loop.store import RedisStore


@given(st.text(max_size=1500))
def test_pieces_join_back_to_the_value_and_each_fits_the_compact_limit(value: str) -> None:
    parts = models.pieces(value)
    assert "".join(parts) == value
    if len(parts) > 1:
        assert len(parts) <= MAX_PIECES
        assert all(0 < len(p.encode()) <= PIECE_BYTES for p in parts)


def test_a_piece_never_cuts_a_multibyte_character() -> None:
    value = "é" * 100  # 200 bytes: an odd cut at 64 would split a character
    parts = models.pieces(value)
    assert len(parts) == 4
    assert all(len(p.encode()) <= PIECE_BYTES for p in parts)
    assert "".join(parts) == value


def test_short_and_very_long_values_are_stored_whole() -> None:
    assert models.pieces("x" * PIECE_BYTES) == ["x" * PIECE_BYTES]
    huge = "y" * (PIECE_BYTES * MAX_PIECES + 1)
    assert models.pieces(huge) == [huge]


@given(st.text(max_size=1200), st.text(max_size=1200))
def test_encoding_then_decoding_a_row_gives_the_row_back(title: str, description: str) -> None:
    row = {"id": "a" * 24, "title": title, "description": description}
    assert {k: v for k, v in models.decode(ISSUE_FIELDS, models.encode(ISSUE_FIELDS, row)).items()
            if v is not None} == row


def test_pieces_after_a_gap_are_not_joined() -> None:
    raw = {"description": "a", "description~1": "b", "description~3": "d"}
    assert models.decode(ISSUE_FIELDS, raw)["description"] == "ab"


@pytest.mark.parametrize("sizes", [(200, 70), (200, 10), (200, None), (None, 300), (900, 130, 5, None, 64)])
def test_rewriting_a_description_leaves_no_stale_pieces(store: RedisStore, sizes: tuple[int | None, ...]) -> None:
    issue = store.issues.create({"title": "t", "type": "task"})
    for n in sizes:
        text = None if n is None else ("z" * (n - 1) + "!")
        store.issues.update(issue["id"], {"description": text})
        raw = store.r.hgetall(store.keys.issue(issue["id"]))
        assert store.issues.get(issue["id"])["description"] == text  # type: ignore[index]
        expected = models.piece_names("description", text)
        assert sorted(f for f in raw if f.startswith("description")) == sorted(expected)


def test_a_typical_issue_hash_stays_compact_under_the_default_redis_config(private_store: RedisStore) -> None:
    store = private_store
    assert store.r.config_get("hash-max-ziplist-value")["hash-max-ziplist-value"] == "64"  # Redis's default
    issue = store.issues.create({"title": "A sixty-character title for an issue that needs some work ok",
                                 "type": "task", "description": "word " * 40 + "é" * 30})
    assert store.r.object("encoding", store.keys.issue(issue["id"])) in ("listpack", "ziplist")
    assert store.issues.get(issue["id"])["description"] == "word " * 40 + "é" * 30  # type: ignore[index]


def test_the_dispatch_claim_returns_the_whole_description(store: RedisStore) -> None:
    text = "Steps to reproduce: " + "step " * 60
    issue = store.issues.create({"title": "t", "type": "task", "status": "todo", "description": text})
    body = store.dispatch.next("agent")
    assert body is not None
    assert body["issue"]["id"] == issue["id"]
    assert text in body["prompt"]
