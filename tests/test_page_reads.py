"""A page of rows is read in one Redis command (``rows_read.lua``) and converted straight to its
wire form, and it is the same page, field for field, as reading each row on its own (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from loop import models
from loop.models import ISSUE_FIELDS
from loop.runtime import Loop
from loop.store import RedisStore
from tests.conftest import Client
from tests.test_models_pieces import legacy_issue


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
    sent: list[str] = []
    send = store.r.execute_command

    def counted(*args: Any, **kw: Any) -> Any:
        sent.append(str(args[0]))
        return send(*args, **kw)

    monkeypatch.setattr(store.r, "execute_command", counted)
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
