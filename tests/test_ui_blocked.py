"""The queue page's blocked issues: the ``P:dispatch:blocked`` index kept in the dispatch hooks'
MULTI, audited by ``loop admin check``, and paged on /ui/queue with each issue's blockers."""

from __future__ import annotations

import re

import pytest

from api.ui.blocked import blocked_page
from loop.dispatch import audit
from tests.ui_helpers import Browser


@pytest.fixture
def browser(client):
    return Browser(client)


def create(store, title="x", **fields):
    return store.issues.create({"title": title, "type": "task", "status": "todo", **fields})


def blocks(store, blocker, blocked):
    return store.relations.create(blocker["id"], "blocks", blocked["id"])


def members(store):
    return set(store.r.zrange(store.keys.dispatch_blocked(), 0, -1))


def test_an_issue_enters_the_blocked_index_when_blocked_and_leaves_when_its_last_blocker_resolves(store, clock):
    a, b, c = create(store, "a"), create(store, "b"), create(store, "c")
    blocks(store, a, c)
    since = store.r.zscore(store.keys.dispatch_blocked(), c["id"])
    assert members(store) == {c["id"]} and since == store.now()
    clock.advance(60)
    store.relations.create(c["id"], "blocked_by", b["id"])
    assert store.r.zscore(store.keys.dispatch_blocked(), c["id"]) == since  # still blocked since the first
    store.issues.update(a["id"], {"status": "done"})
    assert members(store) == {c["id"]}
    store.issues.update(b["id"], {"status": "canceled"})
    assert members(store) == set()
    store.issues.update(b["id"], {"status": "todo"})  # re-opened: blocks again
    assert members(store) == {c["id"]}
    assert audit.audit(store) == []


def test_removing_the_blocking_relation_unblocks_and_the_audit_sees_a_stale_member(store):
    a, c = create(store, "a"), create(store, "c")
    rel = blocks(store, a, c)
    store.relations.delete(rel["id"])
    assert members(store) == set()
    store.r.zadd(store.keys.dispatch_blocked(), {c["id"]: 1})
    assert any("blocked index" in p for p in audit.audit(store))


def test_the_blocked_page_lists_each_blocked_issue_with_its_blockers_newest_first(store, clock):
    a, b = create(store, "blocker A"), create(store, "blocker B")
    c, d = create(store, "blocked C"), create(store, "blocked D")
    blocks(store, a, c)
    blocks(store, b, c)
    clock.advance(10)
    blocks(store, a, d)
    store.issues.update(b["id"], {"status": "done"})  # C stays blocked by A; B shows as resolved
    items, total = blocked_page(store, 50, 0)
    assert total == 2
    assert [i["issue"]["id"] for i in items] == [d["id"], c["id"]]
    c_item = items[1]
    assert c_item["blockersTotal"] == 2
    assert {(x["issue"]["id"], x["unresolved"]) for x in c_item["blockers"]} == {(a["id"], True), (b["id"], False)}
    assert [i["issue"]["id"] for i in blocked_page(store, 1, 1)[0]] == [c["id"]]


def test_the_queue_page_shows_blocked_issues_and_what_blocks_them(browser, store):
    a, c = create(store, "The blocker"), create(store, "Waiting <b>here</b>")
    blocks(store, a, c)
    page = browser.get("/ui/queue").text
    section = page[page.index('<h2 id="blocked">'):]
    row = re.search(r"<tbody>(.*?)</tbody>", section, re.S)
    assert row
    assert f"#{c['number']}" in row.group(1) and "Waiting &lt;b&gt;here&lt;/b&gt;" in row.group(1)
    assert f"#{a['number']}" in row.group(1) and "The blocker" in row.group(1)
    assert "1–1 of 1" in section
    assert "No issue is blocked" in browser.get("/ui/queue?blocked=50").text
