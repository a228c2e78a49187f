"""Every filter combination pages exactly like filtering every issue by hand: same ids in
creation order, same exact total, whatever the offset (bitmap blocks, bisection and zset
walks included)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from loop.models import ISSUE_STATUSES, ISSUE_TYPES, Row
from loop.store import RedisStore


@pytest.fixture
def mixed(store: RedisStore) -> tuple[RedisStore, list[str], dict[str, list[str]]]:
    """~170 issues: 3 projects, 4 parents, 2 labels; then some deleted, some moved."""
    rng = random.Random(11)
    projects = [store.projects.create({"name": f"p{i}"})["id"] for i in range(3)]
    labels = [store.labels.create({"name": f"l{i}"})["id"] for i in range(2)]
    ids: list[str] = []
    parents: list[str] = []
    for i in range(170):
        data: dict[str, Any] = {"title": f"issue {i}", "type": rng.choice(ISSUE_TYPES),
                                "status": rng.choice(ISSUE_STATUSES), "priority": rng.randint(0, 4)}
        if rng.random() < 0.7:
            data["projectId"] = rng.choice(projects)
        if parents and rng.random() < 0.4:
            data["parentId"] = rng.choice(parents)
        if rng.random() < 0.3:
            data["labelIds"] = rng.sample(labels, rng.randint(1, 2))
        issue = store.issues.create(data)
        ids.append(issue["id"])
        if len(parents) < 4 and "parentId" not in data:
            parents.append(issue["id"])
    for iid in rng.sample([i for i in ids if i not in parents], 25):
        store.issues.delete(iid)
    for iid in rng.sample(ids, 60):
        row = store.issues.get(iid)
        if row and row["deletedAt"] is None:
            store.issues.update(iid, {"status": rng.choice(ISSUE_STATUSES), "priority": rng.randint(0, 4)})
    return store, ids, {"projectId": projects, "labelId": labels, "parentId": parents}


def _by_hand(store: RedisStore, ids: list[str], filters: dict[str, Any]) -> list[Row]:
    rows = [r for r in store.issues.get_many(ids) if r["deletedAt"] is None]
    out = []
    for r in rows:
        labels = store.r.smembers(store.keys.issue_labels(r["id"]))
        if filters.get("status") and r["status"] not in filters["status"]:
            continue
        if filters.get("type") and r["type"] not in filters["type"]:
            continue
        if "priority" in filters and r["priority"] != filters["priority"]:
            continue
        if "projectId" in filters and r["projectId"] != filters["projectId"]:
            continue
        if "parentId" in filters and r["parentId"] != filters["parentId"]:
            continue
        if "labelId" in filters and filters["labelId"] not in labels:
            continue
        out.append(r)
    return sorted(out, key=lambda r: r["number"])


def _filters(refs: dict[str, list[str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{}, {"status": ["todo"]}, {"status": ["todo", "in_progress", "done"]},
                                 {"type": ["task", "plan"]}, {"priority": 3}]
    out += [{"projectId": refs["projectId"][0]}, {"parentId": refs["parentId"][1]}, {"labelId": refs["labelId"][0]}]
    out += [{"status": ["backlog", "triage"], "type": ["signal", "task", "monitor"]},
            {"status": ["todo"], "priority": 1},
            {"projectId": refs["projectId"][1], "status": ["done", "canceled", "todo"]},
            {"projectId": refs["projectId"][0], "status": ["in_progress"]},
            {"projectId": refs["projectId"][2], "labelId": refs["labelId"][1]},
            {"parentId": refs["parentId"][0], "type": ["task", "plan", "hypothesis"], "priority": 2},
            {"projectId": refs["projectId"][0], "labelId": refs["labelId"][0], "status": list(ISSUE_STATUSES)},
            {"projectId": "no-such-project"}, {"status": ["todo"], "projectId": "no-such-project"},
            {"labelId": refs["labelId"][1], "status": ["in_progress"]},  # fewer bitmap matches than label members
            {"labelId": refs["labelId"][0], "type": list(ISSUE_TYPES)},  # the label is the smaller side
            {"parentId": refs["parentId"][2], "labelId": refs["labelId"][0], "priority": 0}]
    return out


@pytest.mark.parametrize("block", [1, 2, 1024])
def test_every_filter_pages_like_filtering_by_hand(mixed, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    store, ids, refs = mixed
    monkeypatch.setattr("loop.store.issue_pages.LIST_BLOCK_BYTES", block)
    checked = 0
    for filters in _filters(refs):
        expected = _by_hand(store, ids, filters)
        for limit, offset in itertools.product((1, 7, 50, 200), (0, 1, 9, 33, 64, 100, 170)):
            rows, total = store.issues.list(filters, limit, offset)
            assert total == len(expected), filters
            assert [r["id"] for r in rows] == [r["id"] for r in expected[offset:offset + limit]], (filters, limit, offset)
            checked += len(rows)
    assert checked > 1000  # the filters really select issues
    assert not store.r.keys(store.keys.tmp("*"))  # scratch bitmaps are gone


def test_a_deleted_issue_leaves_every_bitmap(store: RedisStore) -> None:
    issue = store.issues.create({"title": "t", "type": "task", "status": "todo", "priority": 2})
    n = issue["number"]
    k = store.keys
    bitmaps = [k.issue_bits(), k.issue_bits("status", "todo"), k.issue_bits("type", "task"), k.issue_bits("priority", "2")]
    assert [store.r.getbit(b, n) for b in bitmaps] == [1, 1, 1, 1]
    store.issues.delete(issue["id"])
    assert [store.r.getbit(b, n) for b in bitmaps] == [0, 0, 0, 0]
    assert store.issues.list({}, 10, 0) == ([], 0)
    assert store.r.getrange(k.issue_ids(), (n - 1) * 24, n * 24 - 1) == issue["id"]


def test_the_reindex_tool_rebuilds_bitmaps_and_ids_that_list_the_same(mixed) -> None:
    from loop.store.reindex import rebuild

    store, ids, refs = mixed
    before = [store.issues.list(f, 500, 0) for f in _filters(refs)]
    k = store.keys
    doomed = [*store.r.scan_iter(match=k.issue_bits() + "*"), k.issue_ids()]
    assert store.r.delete(*doomed) >= 10
    assert store.issues.list({}, 10, 0) == ([], 0)
    store.r.set(k.issue_bits("status", "todo"), "\xff" * 40)  # a wrong index is replaced, not merged
    assert rebuild(store) == len(ids)
    assert [store.issues.list(f, 500, 0) for f in _filters(refs)] == before


def test_issue_ids_have_the_width_the_number_to_id_string_assumes() -> None:
    from loop.ids import new_id
    from loop.keys import ID_WIDTH

    assert {len(new_id()) for _ in range(1000)} == {ID_WIDTH}
