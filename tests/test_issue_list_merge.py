"""Multi-value filters are served by merging disjoint indexes; the result must equal the
ZUNIONSTORE path exactly (order, page and total)."""

from __future__ import annotations

import random

import pytest

from loop.models import ISSUE_STATUSES, ISSUE_TYPES
from loop.store.issues import MERGE_WINDOW


@pytest.fixture
def mixed(store):
    rng = random.Random(7)
    for i in range(120):
        store.issues.create({"title": f"issue {i}", "type": rng.choice(ISSUE_TYPES),
                             "status": rng.choice(ISSUE_STATUSES), "priority": rng.randint(0, 4)})
    return store


def _union_page(store, field, values, limit, offset):
    keys = [store.keys.issue_index(field, v) for v in values]
    tmp = store.keys.tmp("check")
    store.r.zunionstore(tmp, keys)
    ids = store.r.zrange(tmp, offset, offset + limit - 1)
    total = store.r.zcard(tmp)
    store.r.delete(tmp)
    return ids, total


@pytest.mark.parametrize("field,values", [
    ("status", ["todo", "in_progress"]),
    ("status", ["done", "triage", "backlog"]),
    ("type", ["task", "signal", "plan", "monitor"]),
])
@pytest.mark.parametrize("limit,offset", [(50, 0), (7, 3), (200, 0), (10, 110)])
def test_a_multi_value_filter_pages_exactly_like_a_union_of_its_indexes(mixed, field, values, limit, offset):
    rows, total = mixed.issues.list({field: values}, limit, offset)
    expected_ids, expected_total = _union_page(mixed, field, values, limit, offset)
    assert [r["id"] for r in rows] == expected_ids
    assert total == expected_total
    numbers = [r["number"] for r in rows]
    assert numbers == sorted(numbers)


def test_a_page_beyond_the_merge_window_falls_back_to_the_union_with_the_same_answer(mixed):
    rows, total = mixed.issues.list({"status": list(ISSUE_STATUSES)}, 50, MERGE_WINDOW)
    assert rows == [] and total == 120
