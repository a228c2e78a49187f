"""A page of rows is read in one Redis command (``rows_read.lua``) and converted straight to its
wire form, and it is the same page, field for field, as reading each row on its own (issue 12)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import orjson
import pytest

from loop import models
from loop.models import ISSUE_FIELDS
from loop.runtime import Loop
from loop.store import RedisStore
from tests.conftest import Client
from tests.test_models_pieces import legacy_issue
from tests.wire import sent_alone


def server_calls(store: RedisStore) -> dict[str, int]:
    """Calls per command since the last reset, the ones scripts make included."""
    stats = store.r.info("commandstats")
    return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("hgetall", "evalsha")}


def test_a_page_of_50_issues_reads_its_rows_in_one_command_not_one_per_row(
        private_store: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    store = private_store  # commandstats are server-wide: a Redis of its own
    for i in range(60):
        store.issues.create({"title": f"i{i}", "type": "task", "status": "todo"})
    store.issues.list({}, 1, 0)  # the scripts are loaded (a first EVALSHA answers NOSCRIPT)
    sent = sent_alone(monkeypatch)  # each its own round trip (not a pipeline's)
    store.r.config_resetstat()
    sent.clear()
    rows, total = store.issues.list({"status": ["todo"]}, 50, 0)
    assert (len(rows), total) == (50, 60)
    # two commands on the wire: the list script for the ids, rows_read.lua for the rows...
    assert sent == ["EVALSHA", "EVALSHA"]
    # ...whose one HGETALL per row runs inside Redis
    assert server_calls(store) == {"hgetall": 50, "evalsha": 2}


def test_the_listed_page_equals_each_issue_read_on_its_own_for_every_field_kind(store: RedisStore,
                                                                                client: Client) -> None:
    project = store.projects.create({"name": "P"})
    full = store.issues.create({
        "title": "Fix é \u2603 \"quoted\"", "type": "task", "status": "todo", "priority": 2, "projectId": project["id"],
        "description": "x" * 500, "commits": [{"sha": "a" * 40, "message": "m", "url": "https://x/a"}]})
    store.issues.update(full["id"], {"status": "done"})  # completedAt set
    bare = store.issues.create({"title": "bare", "type": "signal"})
    legacy = legacy_issue(store, "Steps to reproduce: " + "step é " * 60)
    gone = store.issues.create({"title": "deleted", "type": "task"})
    store.issues.delete(gone["id"])  # soft: not listed
    ids = [full["id"], bare["id"], legacy]
    expected = [models.wire(ISSUE_FIELDS, store.issues.get(i) or {}) for i in ids]
    page = client.get("/api/issues?limit=50").json["data"]
    assert page == expected
    assert page[2]["description"].endswith("step é ")  # the older Loop's pieces, joined
    # a hash gone between the id lookup and the read is skipped, as get_many skips it
    store.r.delete(store.keys.issue(gone["id"]))
    assert store.wire_rows("issue", ISSUE_FIELDS, [gone["id"], "zz" + "0" * 22, bare["id"]]) == [expected[1]]
    store.r.delete(store.keys.issue(bare["id"]))
    assert store.issues.get_many([bare["id"], full["id"]]) == [store.issues.get(full["id"])]


def test_every_list_that_reads_rows_decodes_them_as_a_single_read_does(store: RedisStore) -> None:
    labels = [store.labels.ensure(f"l{i}", "#00ff00") for i in range(3)]
    rows: Any = store.get_rows("label", models.LABEL_FIELDS, [lb["id"] for lb in labels])
    assert rows == [store.get_row("label", models.LABEL_FIELDS, lb["id"]) for lb in labels]
    assert all(isinstance(r["createdAt"], int) for r in rows)


def test_a_row_holding_a_field_loop_does_not_know_lists_as_a_single_read_shows_it(store: RedisStore,
                                                                                   client: Client) -> None:
    issue = store.issues.create({"title": "extra", "type": "task", "priority": 1})
    store.r.hset(store.keys.issue(issue["id"]), "someFutureField", "x")  # e.g. written by a newer Loop
    page = client.get("/api/issues?limit=50").json["data"]
    assert page == [models.wire(ISSUE_FIELDS, store.issues.get(issue["id"]) or {})]
    assert "someFutureField" not in page[0] and page[0]["priority"] == 1


def test_a_timestamp_converts_to_the_same_iso_string_first_and_when_remembered() -> None:
    raw = ["1771588800123", "0", "1771588800123"]
    assert [models.wire_page({"t": "t"}, [["t", r]])[0] for r in raw] == [
        {"t": "2026-02-20T12:00:00.123Z"}, {"t": "1970-01-01T00:00:00.000Z"}, {"t": "2026-02-20T12:00:00.123Z"}]


def test_wire_gives_the_same_form_for_a_decoded_row_and_for_any_other_row() -> None:
    raw = {"id": "a" * 24, "number": "7", "title": "t", "createdAt": "1771588800123", "commits": "[]"}
    decoded = models.decode(ISSUE_FIELDS, raw)
    shuffled = {k: decoded[k] for k in reversed(list(decoded))}
    extra = {**decoded, "notAField": 1}
    by_field = {k: (None if decoded[k] is None else models.iso(decoded[k])) if kind == "t" else decoded[k]
                for k, kind in ISSUE_FIELDS.items()}
    for row in (decoded, shuffled, extra):
        out = models.wire(ISSUE_FIELDS, row)
        assert out == by_field and list(out) == list(ISSUE_FIELDS)
    assert by_field["createdAt"] == "2026-02-20T12:00:00.123Z" and decoded["createdAt"] == 1771588800123


def test_a_listed_page_shows_every_acknowledged_write_at_once_whoever_wrote_it(store: RedisStore,
                                                                              client: Client) -> None:
    """The page's rows (and the queue preview's issues) come through a memo of row content ->
    encoded wire form: interleave every kind of write with reads (the test clock is frozen, so
    updatedAt never changes) and the next read must show each one, as reading each row on its
    own does."""
    ids = [client.post("/api/issues", json={"title": f"t{i}", "type": "task", "status": "todo"}).json["data"]["id"]
           for i in range(6)]

    def page() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = client.get("/api/issues?limit=50").json["data"]
        assert rows == [models.wire(ISSUE_FIELDS, r) for r in store.issues.list({}, 50, 0)[0]]
        return rows

    def row(rows: list[dict[str, Any]], issue_id: str) -> dict[str, Any]:
        queued = client.get("/api/dispatch/queue?limit=50").json["data"]  # the same memo, scored
        assert queued == orjson.loads(orjson.dumps(store.dispatch.queue(None, 50, 0)[0]))
        assert {q["issue"]["id"]: q["issue"] for q in queued} == {r["id"]: r for r in rows if r["status"] == "todo"}
        return next(r for r in rows if r["id"] == issue_id)

    first = page()
    assert page() == first  # the second read is served from the memo...
    memo = models._WIRE_MEMOS[id(ISSUE_FIELDS)][1]
    assert len(memo) >= 6
    # ...and each write below must show in the very next read
    assert client.patch(f"/api/issues/{ids[0]}", json={"title": "renamed"}).status_code == 200
    assert row(page(), ids[0])["title"] == "renamed"
    claim = client.get("/api/dispatch/next")  # the Lua claim writes the issue hash
    assert claim.status_code == 200
    claimed = claim.json["issue"]["id"]
    after_claim = row(page(), claimed)
    assert after_claim["status"] == "in_progress" and after_claim["agentSessionId"]
    token = claim.json["claim"]["token"]
    assert client.patch(f"/api/issues/{claimed}", json={"status": "todo"},
                        headers={"X-Loop-Claim-Token": token}).status_code == 200
    assert row(page(), claimed)["status"] == "todo"
    assert client.delete(f"/api/issues/{ids[1]}").status_code == 204
    assert ids[1] not in [r["id"] for r in page()]
    store.r.hset(store.keys.issue(ids[2]), "priority", "4")  # a writer that bypasses Loop entirely
    assert row(page(), ids[2])["priority"] == 4
    store.r.hdel(store.keys.issue(ids[3]), "title")
    assert row(page(), ids[3])["title"] is None
    store.r.delete(store.keys.issue(ids[4]))  # gone between the id lookup and the rows: skipped
    assert ids[4] not in [r["id"] for r in page()]


def test_reading_the_same_page_again_is_one_command_and_a_changed_page_is_read_afresh(
        private_store: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    store = private_store
    ids = [store.issues.create({"title": f"i{i}", "type": "task", "status": "todo"})["id"] for i in range(8)]
    store.issues.list({}, 1, 0)  # the scripts are loaded (a first EVALSHA answers NOSCRIPT)
    sent = sent_alone(monkeypatch)  # each its own round trip (not a pipeline's)

    def page() -> tuple[list[Any], int]:
        sent.clear()
        rows, total = store.issues.list_wire({"status": ["todo"]}, 5, 1)
        return orjson.loads(orjson.dumps(rows)), total

    first, total = page()
    assert (len(sent), total, [r["id"] for r in first]) == (2, 8, ids[1:6])  # ids, then rows
    assert page() == (first, 8) and len(sent) == 1  # the hint matched: the rows came with the ids
    store.issues.update(ids[2], {"title": "renamed"})  # same members, new content: still one command
    again, _ = page()
    assert len(sent) == 1 and again[1]["title"] == "renamed"
    store.issues.delete(ids[3])  # the page's members changed: the hint is refused, two commands
    changed, total = page()
    assert (len(sent), total, [r["id"] for r in changed]) == (2, 7, [ids[1], ids[2], ids[4], ids[5], ids[6]])


def test_the_row_memo_gives_right_pages_while_threads_fill_and_clear_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "WIRE_MEMO_MAX", 4)  # cleared by nearly every page
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    fields = {"id": "s", "n": "i", "at": "t"}
    pages = [[orjson.dumps(["id", f"r{p}-{i}", "n", str(i), "at", str(1771588800000 + i)]).decode() for i in range(5)]
             for p in range(20)]
    expected = [[{"id": f"r{p}-{i}", "n": i, "at": f"2026-02-20T12:00:00.00{i}Z"} for i in range(5)] for p in range(20)]
    wrong: list[str] = []

    def work(k: int) -> None:
        for rep in range(300):
            p = (k * 7 + rep) % 20
            try:
                issues, rows = models.wire_entries(fields, pages[p], rows=True)
                if orjson.loads(orjson.dumps(issues)) != expected[p] or [r["n"] for r in rows] != list(range(5)):
                    wrong.append(f"page {p}")
            except Exception as exc:  # noqa: BLE001 - a KeyError from a cleared memo is the failure sought
                wrong.append(repr(exc))

    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(0.005)
    assert wrong == []
