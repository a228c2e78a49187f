"""A new issue's transaction runs as one command (``issue_new.lua``) when it is made of scripts
alone: a plain create, a signal's, a fingerprint's first signal (its group checked by the same
command). It must write exactly what the MULTI path writes, draw a number only when it writes,
and leave every transaction that is not made of scripts alone to that path."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
import redis

from loop.runtime import build
from loop.scripts import NotComposable, Stager, eval_body
from loop.store.goals import Reading
from loop.store.issues import NEW_SCRIPT, Issues
from loop.store.signals import fingerprint_digest, title_for
from tests.concurrency import at_once

ID = re.compile(r"\b[a-z][a-z0-9]{23}\b")


def send(store, fingerprint: str | None, payload: Any, severity: str = "low", project_id: str | None = None,
         guard: str | None = None):
    data = {"source": "sentry", "type": "error", "severity": severity, "payload": payload,
            "fingerprint": fingerprint, "projectId": project_id}
    issue = store.signals.issue_data("sentry", severity, payload, title_for("sentry", "error", payload),
                                     project_id=project_id)
    return store.signals.create(data, issue, guard=guard and f"{store.keys.prefix}:signals:done:test:{guard}",
                                guard_ttl=60 if guard else None)


def dump(store) -> dict[str, Any]:
    """Every key of the namespace and its value, prefix stripped and each id replaced by a name
    (ids are random; everything else must match): issues by number, then signals in index order,
    then the rest (a project, a goal) in the order first seen."""
    r, prefix = store.r, store.keys.prefix
    numbered = r.get(store.keys.issue_ids()) or ""
    names: dict[str, str] = {}
    for n in range(0, len(numbered), 24):
        names[numbered[n:n + 24]] = f"<issue{n // 24 + 1}>"
    for i, sid in enumerate(r.zrange(store.keys.signal_index(), 0, -1)):
        names[sid] = f"<signal{i}>"

    def norm(text: str) -> str:
        text = text.replace(prefix, "P")
        return ID.sub(lambda m: names.setdefault(m[0], f"<id{len(names)}>"), text)

    out: dict[str, Any] = {}
    for key in sorted(r.scan_iter(match=store.keys.all_pattern(), count=1000)):
        kind = r.type(key)
        if kind == "hash":
            value: Any = sorted((norm(k), norm(v)) for k, v in r.hgetall(key).items())
        elif kind == "zset":
            value = sorted((norm(m), s) for m, s in r.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            value = sorted(norm(m) for m in r.smembers(key))
        elif kind == "string" and key == store.keys.issue_ids():
            value = [names[numbered[n:n + 24]] for n in range(0, len(numbered), 24)]
        elif kind == "string":
            value = norm(r.get(key) or "")
        else:
            value = kind
        out[norm(key)] = (value, r.ttl(key) > 0)
    return out


@pytest.mark.parametrize("case", ["todo", "project", "triage", "critical", "no fingerprint", "guarded",
                                  "guarded, no fingerprint"])
def test_the_one_command_open_writes_what_the_watch_path_writes(store, redis_client, settings, clock,
                                                                 monkeypatch, case):
    slow = build(redis_client, dataclasses.replace(settings, namespace=f"t-{uuid.uuid4().hex[:12]}"), clock)
    if case == "triage":
        for s in (store, slow):
            s.settings = dataclasses.replace(s.settings, promote_signals_to_todo=False)
    try:
        for s in (store, slow):
            clock.advance(-3 if s is slow else 0)  # the same times in both
            pid = None
            if case == "project":
                pid = s.projects.create({"name": "P"})["id"]
                s.goals.create({"title": "G", "projectId": pid})  # a goal bonus the ready score adds
            for i in range(3):
                clock.advance(1)
                send(s, None if "no fingerprint" in case else f"fp:{i}", {"message": f"m{i}", "n": [i, {"x": "]"}]},
                     severity="critical" if case == "critical" else "low", project_id=pid,
                     guard=f"d{i}" if "guarded" in case else None)
            monkeypatch.setattr(Issues, "create_one", lambda self, *a, **kw: None)  # slow: the MULTI path
        monkeypatch.undo()
        assert dump(store) == dump(slow)
        assert store.r.get(store.keys.issue_seq()) == "3"
    finally:
        slow.delete_namespace()


@pytest.mark.parametrize("status", ["todo", "backlog"])
def test_a_plain_create_writes_what_the_multi_path_writes(store, redis_client, settings, clock, monkeypatch, status):
    slow = build(redis_client, dataclasses.replace(settings, namespace=f"t-{uuid.uuid4().hex[:12]}"), clock)
    try:
        for s in (store, slow):
            clock.advance(-3 if s is slow else 0)
            pid = s.projects.create({"name": "P"})["id"]
            for i, fields in enumerate(({}, {"projectId": pid}, {"type": "monitor", "priority": 2})):
                clock.advance(1)
                s.issues.create({"title": f"t{i}", "description": "d", "type": "task", "status": status, **fields})
            monkeypatch.setattr(Issues, "create_one", lambda self, *a, **kw: None)
        monkeypatch.undo()
        assert dump(store) == dump(slow)
    finally:
        slow.delete_namespace()


def test_a_create_with_labels_a_parent_or_done_takes_the_multi_path(store, monkeypatch):
    made: list[object] = []
    original = Issues.create_one
    monkeypatch.setattr(Issues, "create_one", lambda self, *a, **kw: made.append(original(self, *a, **kw)) or made[-1])
    label = store.labels.create({"name": "L"})
    root = store.issues.create({"title": "root", "type": "plan"})
    assert made == [root]  # this one went through the script
    store.issues.create({"title": "done", "type": "task", "status": "done"})  # tried: a plain ZADD is queued
    store.issues.create({"title": "child", "type": "task", "parentId": root["id"]})  # never tried: the parent
    store.issues.create({"title": "labelled", "type": "task", "labelIds": [label["id"]]})  # nor labels
    assert made[1:] == [None]
    assert store.issues.get(store.issues.id_by_number(3))["parentId"] == root["id"]
    assert store.r.get(store.keys.issue_seq()) == "4"


@pytest.mark.parametrize("kind", ["fingerprint", "fingerprint and guard", "guard", "plain"])
def test_a_new_signal_is_one_command_and_no_transaction(private_store, kind):
    store = private_store  # commandstats are server-wide: a Redis of its own
    send(store, "fp:warm", {"n": 0})  # the script is loaded (a first EVALSHA answers NOSCRIPT)
    store.r.config_resetstat()
    opened = send(store, "fp:new" if "fingerprint" in kind else None, {"n": 1},
                  guard="d1" if "guard" in kind else None)
    stats = store.r.info("commandstats")
    assert not opened.grouped and opened.issue["number"] == 2
    # The commands a client sent (the script's own HSETs, ZADDs... are counted too, but no WATCH,
    # MULTI, EXEC, EVAL nor INCR: the number is drawn inside the script).
    assert not {"cmdstat_watch", "cmdstat_multi", "cmdstat_exec", "cmdstat_eval"} & set(stats)
    assert stats["cmdstat_evalsha"]["calls"] == 1 and stats["cmdstat_incr"]["calls"] == 1
    assert stats.get("cmdstat_get", {"calls": 0})["calls"] == kind.count("fingerprint") + kind.count("guard")  # the checks


def test_a_group_opened_meanwhile_makes_the_signal_join_it_and_draws_no_number(store, redis_client, settings, clock):
    other = build(redis_client, settings, clock)  # another process: this one has no hint for the group
    first = send(other, "fp:race", {"n": 0}).issue
    joined = send(store, "fp:race", {"n": 1})
    assert joined.grouped and joined.issue["id"] == first["id"] and joined.issue["signalCount"] == 2
    assert store.r.get(store.keys.issue_seq()) == "1"  # the script drew nothing
    assert store.signals.hints[store.keys.signal_group(fingerprint_digest("fp:race"))] == first["id"]


def test_concurrent_first_signals_of_one_fingerprint_open_one_issue(store, redis_client, settings, clock):
    other = build(redis_client, settings, clock)
    opened = at_once([lambda s=s, i=i: send(s, "fp:rush", {"n": i})
                      for i, s in enumerate([store, other] * 15)])
    issues = {r.issue["id"] for r in opened}
    assert len(issues) == 1 and sum(not r.grouped for r in opened) == 1
    assert store.issues.get(issues.pop())["signalCount"] == 30
    assert store.r.get(store.keys.issue_seq()) == "1"


@pytest.mark.parametrize("fingerprint", ["fp:g", None])
def test_a_delivery_already_recorded_writes_nothing_more_and_answers_what_was_recorded(store, fingerprint):
    first = send(store, fingerprint, {"n": 1}, guard="d1")
    seq = store.r.get(store.keys.issue_seq())
    store.signals.hints.clear()  # as another process: nothing known of the group
    again = send(store, fingerprint, {"n": 1}, guard="d1")
    assert not again.created and again.signal["id"] == first.signal["id"] and again.issue["id"] == first.issue["id"]
    assert store.r.get(store.keys.issue_seq()) == seq  # no number drawn
    assert store.r.zcard(store.keys.signal_index()) == 1
    assert 0 < store.r.ttl(f"{store.keys.prefix}:signals:done:test:d1") <= 60


def test_a_signal_with_a_goal_reading_takes_the_transaction(store, monkeypatch):
    goal = store.goals.create({"title": "G", "metric": "m", "target": 10})
    made: list[object] = []
    original = Issues.create_one
    monkeypatch.setattr(Issues, "create_one", lambda self, *a, **kw: made.append(original(self, *a, **kw)) or made[-1])
    data = {"source": "x", "type": "metric", "severity": "low", "payload": {"value": 3}, "fingerprint": "fp:r",
            "goalId": goal["id"]}
    issue = store.signals.issue_data("x", "low", data["payload"], "t")
    opened = store.signals.create(data, issue, readings=[(goal["id"], Reading(3.0, store.now(), "x"))])
    assert made == [] and not opened.grouped
    assert store.goals.get(goal["id"])["currentValue"] == 3


def test_only_a_transaction_of_named_scripts_is_composable(store):
    k = store.keys
    day, hour = k.stats_bucket("day", "d"), k.stats_bucket("hour", "h")
    stager = Stager({})
    stager.multi()
    eval_body(stager, "stats_count", [day, hour], "x", 1, 2)
    assert stager.parts(["stats_count"]) == [("stats_count", [day, hour], ["x", 1, 2])]
    assert stager.parts(["issue_create"]) is None  # not a part it may run
    stager.set(k.tmp("x"), 1)
    assert stager.parts(["stats_count"]) is None  # a plain command
    with pytest.raises(NotComposable):
        stager.execute()


@pytest.mark.parametrize("read", ["watch", "get"])
def test_a_staged_transaction_that_reads_before_multi_is_not_composable(read):
    stager = Stager({})
    with pytest.raises(NotComposable):
        stager.watch("k") if read == "watch" else stager.get("k")


def test_an_unknown_part_is_refused_before_anything_is_written(store):
    group = store.keys.signal_group("0" * 32)
    with pytest.raises(redis.ResponseError, match="unknown part"):
        store.scripts[NEW_SCRIPT](keys=[store.keys.issue_seq(), group, store.keys.tmp("x")],
                                  args=[1, "", 24, 1, "nope", 1, 0])
    assert store.r.get(store.keys.issue_seq()) is None and store.r.get(group) is None
