"""A grouped signal that no issue hook needs to see joins in one command (``signal_append.lua``):
it must write exactly what the WATCH/MULTI path writes, and leave every other case to that path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from loop import models
from loop.runtime import build
from loop.store.signals import (
    GROUP_RECENT_PAYLOAD_BYTES,
    SIGNAL_FIELDS,
    Signals,
    fingerprint_digest,
    title_for,
)
from tests.concurrency import at_once
from tests.redis_server import monitored, undeclared

#: Payloads whose JSON holds what a naive split of signalRecent would trip on.
PAYLOADS: list[Any] = [
    {"message": "KeyError: 'user'"},
    {"message": 'a "quoted", [bracketed] {braced} \\ back\\slashed, string ],}', "n": 1.5},
    {"nested": [[1, 2], {"a": [3, {"b": "]"}]}, []], "empty": {}, "unicode": "é ✓ \u2028"},
    {"message": "x" * (GROUP_RECENT_PAYLOAD_BYTES + 10)},  # kept as an excerpt (a string)
    {"message": "last", "big": 2**60, "neg": -0.25, "t": True, "f": False, "none": None},
]


def send(store, fingerprint: str, payload: Any, severity: str = "low"):
    data = {"source": "sentry", "type": "error", "severity": severity, "payload": payload,
            "fingerprint": fingerprint}
    issue = store.signals.issue_data("sentry", severity, payload, title_for("sentry", "error", payload))
    return store.signals.create(data, issue)


def state(store, issue_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The issue's hash and its signals' rows as stored, with the ids that differ between
    fingerprints taken out."""
    issue = store.r.hgetall(store.keys.issue(issue_id))
    # Named by creation time (the clock moves between signals): ids differ, and so does their order.
    created = {sid: store.r.hget(store.keys.row("signal", sid), "createdAt")
               for sid in store.r.zrange(store.keys.signal_index(), 0, -1)
               if store.r.hget(store.keys.row("signal", sid), "issueId") == issue_id}
    signal_ids = sorted(created, key=created.__getitem__)
    recent = orjson.loads(issue.pop("signalRecent"))
    issue["signalRecent"] = [{**r, "signalId": created[r["signalId"]]} for r in recent]
    for field in ("id", "number", "title"):
        issue.pop(field)
    rows = []
    for sid in signal_ids:
        row = store.r.hgetall(store.keys.row("signal", sid))
        rows.append({k: v for k, v in row.items() if k not in ("id", "issueId", "fingerprint")})
    return issue, rows


def test_the_one_command_join_writes_what_the_watch_path_writes(store, clock, monkeypatch):
    fast = [send(store, "fp:fast", PAYLOADS[0])]
    for p in PAYLOADS[1:]:
        clock.advance(1)
        fast.append(send(store, "fp:fast", p))
    calls: list[str] = []
    original = Signals._join

    def join(self, write, issue_id):
        calls.append(issue_id)
        return original(self, write, issue_id)

    monkeypatch.setattr(Signals, "_append", lambda self, write, issue_id: None)
    monkeypatch.setattr(Signals, "_join", join)
    clock.advance(-len(PAYLOADS) + 1)
    slow = [send(store, "fp:slow", PAYLOADS[0])]
    for p in PAYLOADS[1:]:
        clock.advance(1)
        slow.append(send(store, "fp:slow", p))
    assert len(calls) == len(PAYLOADS) - 1  # every later signal went through the WATCH path
    assert [r.grouped for r in fast] == [r.grouped for r in slow] == [False] + [True] * (len(PAYLOADS) - 1)
    assert state(store, fast[0].issue["id"]) == state(store, slow[0].issue["id"])
    # The answers too: the issue and the signal as the API sends them.
    for a, b in zip(fast, slow, strict=True):
        wa, wb = store.issues.wire(a.issue), store.issues.wire(b.issue)
        assert [r["payload"] for r in wa["signalRecent"] or []] == [r["payload"] for r in wb["signalRecent"] or []]
        assert {k: v for k, v in wa.items() if k not in ("id", "number", "title", "signalRecent")} == \
            {k: v for k, v in wb.items() if k not in ("id", "number", "title", "signalRecent")}
        assert models.wire(SIGNAL_FIELDS, a.signal)["payload"] == models.wire(SIGNAL_FIELDS, b.signal)["payload"]


@pytest.mark.parametrize("stored", ['[1,"x, ]",{"a":[1,"]"]},null,{"b":{}}]',
                                    '[ 1 , "x, ]" ,\n {"a": [1, "]"]} , null, {"b": {}} ]'])
def test_entries_that_are_not_objects_are_dropped_as_the_watch_path_drops_them(store, stored):
    first = send(store, "fp:legacy", {"n": 0}).issue
    store.r.hset(store.keys.issue(first["id"]), "signalRecent", stored)
    joined = send(store, "fp:legacy", {"n": 1})
    assert joined.grouped and joined.issue["signalCount"] == 2
    assert [r.get("payload", r) for r in joined.issue["signalRecent"]] == [{"n": 1}, {"a": [1, "]"]}, {"b": {}}]


@pytest.mark.parametrize("change", ["raise the priority", "closed", "deleted", "regrouped", "guarded"])
def test_what_an_issue_hook_must_see_takes_the_watch_path(store, change, monkeypatch):
    first = send(store, "fp:x", {"n": 0}).issue
    if change == "closed":
        store.issues.update(first["id"], {"status": "done"})
    elif change == "deleted":
        store.issues.delete(first["id"])
    elif change == "regrouped":
        store.r.set(store.keys.signal_group(fingerprint_digest("fp:x")), "x" * 24)  # names no issue
    joined: list[bool] = []
    original = Signals._append

    def append(self, write, issue_id):
        out = original(self, write, issue_id)
        joined.append(out is not None)
        return out

    monkeypatch.setattr(Signals, "_append", append)
    if change == "guarded":
        data = {"source": "sentry", "type": "error", "severity": "low", "payload": {"n": 1}, "fingerprint": "fp:x"}
        issue = store.signals.issue_data("sentry", "low", data["payload"], "t")
        second = store.signals.create(data, issue, guard=f"{store.keys.prefix}:test:guard", guard_ttl=60)
    else:
        second = send(store, "fp:x", {"n": 1}, severity="critical" if change == "raise the priority" else "low")
    assert True not in joined
    if change in ("raise the priority", "guarded"):
        assert second.grouped and second.issue["id"] == first["id"]
        assert second.issue["priority"] == (1 if change == "raise the priority" else first["priority"])
    else:
        assert not second.grouped and second.issue["id"] != first["id"]


def test_two_processes_joining_one_group_concurrently_lose_no_signal(store, redis_client, settings, clock):
    other = build(redis_client, settings, clock)
    first = send(store, "fp:busy", {"n": 0}).issue
    send(other, "fp:busy", {"n": 0})  # the other process's hint names the issue too
    joined = at_once([lambda s=s, i=i: send(s, "fp:busy", {"n": i}) for i, s in enumerate([store, other] * 20)])
    assert {r.issue["id"] for r in joined} == {first["id"]}
    issue = store.issues.get(first["id"])
    assert issue is not None and issue["signalCount"] == 42
    assert len(issue["signalRecent"]) == 3
    assert store.r.zcount(store.keys.signal_index(), issue["number"], issue["number"]) == 42


def test_the_signal_and_issue_create_scripts_touch_only_their_declared_keys(private_store):
    store = private_store
    prefix = store.keys.prefix + ":"

    def work() -> None:
        send(store, "fp:keys", {"n": 0})  # signal_open, issue_create, signal_stage (with the group), stats_count
        send(store, "fp:keys", {"n": 1})  # signal_append
        send(store, "fp:keys", {"n": 2}, severity="critical")  # signal_join: the priority rises

    def declared_of(args: list[str]) -> set[str] | None:
        if args[0].upper() == "EVALSHA":
            return set(args[3:3 + int(args[2])])
        if args[0].upper() == "EVAL":  # the body has spaces: its keys are the prefixed words after it
            return {a for a in args if a.startswith(prefix)}
        return None

    touched, bad = undeclared(monitored(store.r, work), declared_of)
    assert bad == []
    assert {"SETRANGE", "SETBIT", "ZADD", "HSET", "HINCRBY", "EXPIRE", "SET", "HMGET", "HGETALL"} <= set(touched)
