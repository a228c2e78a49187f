"""The issue list script touches only keys it declared in KEYS (Redis Cluster), proved with
MONITOR on a private redis-server, on every path: bitmaps only, zsets with bitmaps, offsets."""

from __future__ import annotations

from typing import Any

from loop.store import RedisStore
from loop.store.issues import LIST_SCRIPT
from tests.redis_server import monitored


def _keys_of(args: list[str]) -> list[str]:
    """The key arguments of a command the list script runs."""
    name = args[0].upper()
    if name == "BITOP":
        return args[2:]
    if name == "DEL":
        return args[1:]
    assert name in {"BITCOUNT", "GETBIT", "GETRANGE", "STRLEN", "ZCARD", "ZRANGE", "ZSCORE"}, name
    return args[1:2]


def test_the_list_script_touches_only_its_declared_keys(private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    label = store.labels.ensure("ops", "#000000")
    for i in range(40):
        store.issues.create({"title": f"i{i}", "type": "task" if i % 2 else "plan", "status": "todo" if i % 3 else "done",
                             "projectId": project["id"] if i % 4 else None, "labelIds": [label["id"]] if i % 5 else []})
    sha = store.scripts[LIST_SCRIPT].sha
    results: list[Any] = []

    def work() -> None:
        results.append(store.issues.list({}, 5, 10))
        results.append(store.issues.list({"status": ["todo", "done"], "type": ["task"]}, 5, 3))
        results.append(store.issues.list({"projectId": project["id"], "labelId": label["id"], "status": ["todo"]}, 5, 2))

    declared: set[str] = set()
    touched: list[str] = []
    bad: list[str] = []
    for cmd in monitored(store.r, work):
        args = cmd["command"].split()
        if cmd.get("client_type") == "lua":
            for key in _keys_of(args):
                touched.append(args[0].upper())
                if key not in declared:
                    bad.append(f"{args[0]} {key}")
        elif args[0].upper() == "EVALSHA":
            assert args[1] == sha
            declared = set(args[3:3 + int(args[2])])
    assert bad == []
    assert {"BITOP", "BITCOUNT", "GETRANGE", "ZSCORE", "GETBIT", "DEL"} <= set(touched)
    assert [total for _, total in results] == [40, sum(1 for i in range(40) if i % 2),
                                               sum(1 for i in range(40) if i % 3 and i % 4 and i % 5)]
