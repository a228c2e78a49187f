"""The issue list script touches only keys it declared in KEYS (Redis Cluster), proved with
MONITOR on a private redis-server, on every path: bitmaps only, zsets with bitmaps, offsets; so
does the script that reads the page's rows."""

from __future__ import annotations

from typing import Any

from loop.store import RedisStore
from loop.store.base import ROWS_SCRIPT
from loop.store.issue_pages import LIST_SCRIPT
from tests.redis_server import monitored, undeclared


def test_the_list_script_touches_only_its_declared_keys(private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    label = store.labels.ensure("ops", "#000000")
    for i in range(40):
        store.issues.create({"title": f"i{i}", "type": "task" if i % 2 else "plan", "status": "todo" if i % 3 else "done",
                             "projectId": project["id"] if i % 4 else None, "labelIds": [label["id"]] if i % 5 else []})
    shas = {store.scripts[LIST_SCRIPT].sha, store.scripts[ROWS_SCRIPT].sha}  # the ids, then their rows
    results: list[Any] = []

    def work() -> None:
        results.append(store.issues.list({}, 5, 10))
        results.append(store.issues.list({"status": ["todo", "done"], "type": ["task"]}, 5, 3))
        results.append(store.issues.list({"projectId": project["id"], "labelId": label["id"], "status": ["todo"]}, 5, 2))
        results.append(store.issues.list({"labelId": label["id"], "type": ["task", "plan"]}, 5, 0))  # zset walk
        for _ in range(2):  # the second read of a page hands the script its rows' keys as a hint
            store.issues.list_wire({"status": ["todo", "done"], "type": ["task"]}, 5, 3)
            store.issues.list_wire({"projectId": project["id"], "labelId": label["id"], "status": ["todo"]}, 5, 2)

    def declared_of(args: list[str]) -> set[str] | None:
        if args[0].upper() != "EVALSHA":
            return None
        assert args[1] in shas
        return set(args[3:3 + int(args[2])])

    touched, bad = undeclared(monitored(store.r, work), declared_of)
    assert bad == []
    assert {"BITOP", "BITCOUNT", "GETRANGE", "ZSCORE", "GETBIT", "DEL", "HGETALL"} <= set(touched)
    assert [total for _, total in results] == [40, sum(1 for i in range(40) if i % 2),
                                               sum(1 for i in range(40) if i % 3 and i % 4 and i % 5),
                                               sum(1 for i in range(40) if i % 5)]


def test_a_project_and_status_page_stops_walking_once_full_and_counts_from_the_project_counts(
        private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    for i in range(400):
        store.issues.create({"title": f"i{i}", "type": "task", "status": "todo" if i % 2 else "backlog",
                             "projectId": project["id"]})
    store.r.config_resetstat()
    rows, total = store.issues.list({"projectId": project["id"], "status": ["todo"]}, 5, 10)
    getbits = int(store.r.info("commandstats").get("cmdstat_getbit", {}).get("calls", 0))
    assert total == 200
    assert [r["title"] for r in rows] == [f"i{i}" for i in range(21, 31, 2)]
    assert 0 < getbits <= 31  # walked up to the page's last issue, not the whole project
    store.r.config_resetstat()
    assert store.issues.list({"projectId": project["id"], "status": ["todo"], "type": ["task"]}, 5, 10)[1] == 200
    # the project/status/type counts give this total too: no walk of the 200 todo tasks
    assert "cmdstat_zscore" not in store.r.info("commandstats")


def test_an_and_filter_walks_whichever_side_is_smaller(private_store: RedisStore) -> None:
    store = private_store
    label = store.labels.ensure("bug", "#ff0000")
    for i in range(300):  # the label is on every issue, 1 in 30 is todo
        store.issues.create({"title": f"i{i}", "type": "task", "status": "todo" if i % 30 == 0 else "backlog",
                             "labelIds": [label["id"]]})

    def calls(filters: dict[str, Any]) -> tuple[int, dict[str, int]]:
        store.r.config_resetstat()
        total = store.issues.list(filters, 5, 0)[1]
        stats = store.r.info("commandstats")
        return total, {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("getbit", "zscore")}

    # 10 todo issues against 300 label members: the bitmap is walked, one ZSCORE per todo issue
    assert calls({"labelId": label["id"], "status": ["todo"]}) == (10, {"getbit": 0, "zscore": 10})
    # every issue is a task: the label's 300 members are walked, one GETBIT each
    assert calls({"labelId": label["id"], "type": ["task"], "status": ["backlog", "todo"]}) == (
        300, {"getbit": 300, "zscore": 0})


def test_two_signal_filters_walk_the_smaller_index_instead_of_intersecting_whole_ones(
        private_store: RedisStore) -> None:
    store = private_store
    for i in range(300):
        data = {"source": "sentry", "type": "error", "severity": "critical" if i % 50 == 0 else "low",
                "payload": {}}
        store.signals.create(data, store.signals.issue_data("sentry", data["severity"], {}, f"s{i}"))
    store.r.config_resetstat()
    rows, total = store.signals.list({"source": "sentry", "severity": "critical"}, 2, 1)
    stats = store.r.info("commandstats")
    assert total == 6 and [r["severity"] for r in rows] == ["critical", "critical"]
    assert "cmdstat_zinterstore" not in stats
    assert int(stats["cmdstat_zscore"]["calls"]) <= 3  # up to the page's end: the total is counted
    store.r.config_resetstat()
    rows, total = store.signals.list({"source": "sentry", "severity": "low"}, 3, 0)
    assert total == 294 and len(rows) == 3
    assert int(store.r.info("commandstats")["cmdstat_zscore"]["calls"]) <= 4  # not 294, nor 300


def test_signal_filter_totals_are_exact_for_every_combination(store: RedisStore) -> None:
    combos = [("sentry", "low", "p1"), ("sentry", "low", None), ("sentry", "high", "p1"), ("github", "low", "p1"),
              ("a|severity=low", "low", None)]
    for source, severity, project in combos * 2:
        data = {"source": source, "type": "e", "severity": severity, "payload": {}}
        store.signals.create(data, store.signals.issue_data(source, severity, {}, "t", project_id=project))
    for filters in [{"source": "sentry", "severity": "low"}, {"source": "sentry", "projectId": "p1"},
                    {"severity": "low", "projectId": "p1"}, {"source": "sentry", "severity": "low", "projectId": "p1"},
                    {"source": "a|severity=low", "severity": "low"}, {"source": "nope", "severity": "low"}]:
        expected = sum(2 for c in combos if all(
            v == {"source": c[0], "severity": c[1], "projectId": c[2]}[f] for f, v in filters.items()))
        rows, total = store.signals.list(filters, 50, 0)
        assert total == len(rows) == expected, filters


def test_a_project_and_type_page_stops_walking_once_full_and_counts_from_the_project_type_counts(
        private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    for i in range(400):
        store.issues.create({"title": f"i{i}", "type": "task" if i % 2 else "plan", "status": "todo",
                             "projectId": project["id"]})
    store.r.config_resetstat()
    rows, total = store.issues.list({"projectId": project["id"], "type": ["task"]}, 5, 10)
    stats = store.r.info("commandstats")
    assert total == 200
    assert [r["title"] for r in rows] == [f"i{i}" for i in range(21, 31, 2)]
    assert "cmdstat_zscore" not in stats  # not a walk of the 200 tasks
    assert 0 < int(stats["cmdstat_getbit"]["calls"]) <= 31  # up to the page's last issue only
    assert store.issues.list({"projectId": project["id"], "type": ["task", "plan"]}, 5, 395)[1] == 400



def test_a_project_status_and_type_page_stops_walking_once_full_and_counts_from_the_pair_counts(
        private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    for i in range(400):
        store.issues.create({"title": f"i{i}", "type": "task" if i % 2 else "plan",
                             "status": "todo" if i % 4 < 2 else "done", "projectId": project["id"]})
    store.r.config_resetstat()
    rows, total = store.issues.list({"projectId": project["id"], "type": ["task"], "status": ["todo", "done"]}, 5, 10)
    stats = store.r.info("commandstats")
    assert total == 200 and [r["title"] for r in rows] == [f"i{i}" for i in range(21, 31, 2)]
    assert "cmdstat_zscore" not in stats and 0 < int(stats["cmdstat_getbit"]["calls"]) <= 31
    assert store.issues.list({"projectId": project["id"], "type": ["task"], "status": ["todo"]}, 5, 0)[1] == 100


def test_the_project_type_counts_follow_creates_type_changes_moves_and_deletes(store: RedisStore) -> None:
    def total(project_id: str, *types: str) -> int:
        return store.issues.list({"projectId": project_id, "type": list(types)}, 50, 0)[1]

    a = store.issues.create({"title": "a", "type": "task", "projectId": "p1"})
    b = store.issues.create({"title": "b", "type": "task", "projectId": "p1"})
    store.issues.create({"title": "c", "type": "plan", "projectId": "p2"})
    assert (total("p1", "task"), total("p1", "plan"), total("p2", "plan")) == (2, 0, 1)
    store.issues.update(a["id"], {"type": "plan"})
    assert (total("p1", "task"), total("p1", "plan"), total("p1", "task", "plan")) == (1, 1, 2)
    store.issues.update(b["id"], {"projectId": "p2"})
    assert (total("p1", "task"), total("p2", "task"), total("p2", "plan")) == (0, 1, 1)
    store.issues.delete(a["id"])
    assert total("p1", "plan") == 0
    assert store.r.hgetall(store.keys.counts("project_type")) == {
        "p1|task": "0", "p1|plan": "0", "p2|task": "1", "p2|plan": "1"}


def test_recount_rebuilds_the_list_counters_that_writes_keep(store: RedisStore) -> None:
    from loop.store import recount

    project = store.projects.create({"name": "P"})
    a = store.issues.create({"title": "a", "type": "task", "status": "todo", "projectId": project["id"]})
    store.issues.create({"title": "b", "type": "plan", "status": "todo", "projectId": project["id"]})
    store.issues.update(a["id"], {"type": "plan", "status": "done"})
    gone = store.issues.create({"title": "c", "type": "plan", "projectId": project["id"]})
    store.issues.delete(gone["id"])
    for severity in ("low", "low", "high"):
        data = {"source": "sentry", "type": "e", "severity": severity, "payload": {}}
        store.signals.create(data, store.signals.issue_data("sentry", severity, {}, "t", project_id="p1"))
    names = ("project_status", "project_type", "project_status_type", "signals")
    kept = {n: {f: v for f, v in store.r.hgetall(store.keys.counts(n)).items() if v != "0"} for n in names}
    for n in names:
        store.r.delete(store.keys.counts(n))
    assert recount.rebuild(store) == (6, 3)  # (the signals' triage issues too)
    assert {n: store.r.hgetall(store.keys.counts(n)) for n in names} == kept


def test_a_project_and_label_page_is_counted_by_zintercard_and_walks_only_to_the_page_end(
        private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    label = store.labels.ensure("ops", "#000000")
    for i in range(300):
        store.issues.create({"title": f"i{i}", "type": "task", "projectId": project["id"] if i % 3 else None,
                             "labelIds": [label["id"]] if i % 2 else []})
    shas = {store.scripts[LIST_SCRIPT].sha, store.scripts[ROWS_SCRIPT].sha}  # the ids, then their rows
    results: list[Any] = []

    def declared_of(args: list[str]) -> set[str] | None:
        if args[0].upper() != "EVALSHA":
            return None
        assert args[1] in shas
        return set(args[3:3 + int(args[2])])

    store.r.config_resetstat()
    touched, bad = undeclared(monitored(store.r, lambda: results.append(
        store.issues.list({"projectId": project["id"], "labelId": label["id"]}, 5, 10))), declared_of)
    rows, total = results[0]
    assert bad == [] and "ZINTERCARD" in touched
    assert total == 100 and [r["title"] for r in rows] == [f"i{i}" for i in (31, 35, 37, 41, 43)]
    assert int(store.r.info("commandstats")["cmdstat_zscore"]["calls"]) <= 64  # one batch, not 200
