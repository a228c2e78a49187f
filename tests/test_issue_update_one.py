"""An issue update runs without a transaction when its writes are made of scripts and single-key
commands alone (``issue_update.lua``): staged from a read of the issue, its active session and the
claim token's session, and applied only if that read still holds. After a claim of this process
the read is known already (``Issues.expected``): a fenced re-open or completion is ONE command. It
must write exactly what the WATCH/MULTI path writes, write nothing from a read that changed, and
leave every update that must read under WATCH to that path."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from typing import Any

import pytest

from loop.dispatch import claim as claim_module
from loop.dispatch import sessions
from loop.errors import Conflict
from loop.runtime import build
from loop.store import one_command
from loop.store.issues import Issues
from loop.store.one_command import FENCED_READ, UPDATE_SCRIPT, read_digest
from tests.concurrency import at_once
from tests.test_signal_new import dump


def deterministic_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session ids and claim tokens the same in two namespaces (they are random otherwise)."""
    counter = itertools.count(1)
    monkeypatch.setattr(claim_module, "new_id", lambda: f"s{next(counter):023d}")
    monkeypatch.setattr(sessions.secrets, "token_hex", lambda n: "ab" * n)


def fenced(store: Any, body: Any, changes: dict[str, Any]) -> Any:
    return store.issues.update(body["issue"]["id"], changes, check=store.dispatch.fence(body["claim"]["token"]))


CASES = {
    "re-open": lambda s, b, pid: fenced(s, b, {"status": "todo"}),
    "complete": lambda s, b, pid: fenced(s, b, {"status": "done", "agentSummary": "did it \"quoted\" ü"}),
    "park in backlog": lambda s, b, pid: fenced(s, b, {"status": "backlog", "priority": 1}),
    "retitle while claimed": lambda s, b, pid: s.issues.update(b["issue"]["id"], {"title": "new ]} title"}),
    "move to a project": lambda s, b, pid: fenced(s, b, {"projectId": pid, "status": "todo"}),
    "reprioritize a todo issue": lambda s, b, pid: s.issues.update(
        s.issues.id_by_number(2), {"priority": 1, "description": None}),
    "complete an issue that blocks another": lambda s, b, pid: (
        s.relations.create(b["issue"]["id"], "blocks", s.issues.id_by_number(2)),
        fenced(s, b, {"status": "done"})),
    "cancel": lambda s, b, pid: fenced(s, b, {"status": "canceled"}),
    "changed after the claim": lambda s, b, pid: (
        s.r.hset(s.keys.issue(b["issue"]["id"]), "title", "changed meanwhile"),
        fenced(s, b, {"status": "todo"})),
}


UNFENCED = ("retitle while claimed", "reprioritize a todo issue")  # (no prediction: the transaction)


@pytest.mark.parametrize("case", list(CASES))
def test_the_one_command_update_writes_what_the_transaction_writes(store, redis_client, settings, clock,
                                                                    monkeypatch, case):
    slow = build(redis_client, dataclasses.replace(settings, namespace=f"t-{uuid.uuid4().hex[:12]}"), clock)
    start = clock.ms
    try:
        for s in (store, slow):
            deterministic_claims(monkeypatch)
            clock.ms = start  # the same times in both
            pid = s.projects.create({"name": "P"})["id"]
            s.goals.create({"title": "G", "projectId": pid})  # a goal bonus the ready score adds
            for i in range(2):
                clock.advance(1)
                s.issues.create({"title": f"t{i}", "description": "d" * 300, "type": "task", "status": "todo"})
            clock.advance(1)
            body = s.dispatch.next("agent")
            clock.advance(5)
            CASES[case](s, body, pid)
            if s is store and case not in UNFENCED:
                assert len(store.issues.expected) == 0  # the claim's prediction was used (once)
            monkeypatch.setattr(Issues, "update_one", lambda self, *a, **kw: None)  # slow: the transaction
        monkeypatch.undo()
        assert dump(store) == dump(slow)
    finally:
        slow.delete_namespace()


def counted_scripts(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Calls of the read and update scripts, with the update's answer."""
    calls: list[tuple[str, Any]] = []
    real = store.scripts.__getitem__

    class Counting:
        def __getitem__(self, name: str) -> Any:
            script = real(name)
            if name not in (FENCED_READ, UPDATE_SCRIPT):
                return script

            def call(keys: Any, args: Any) -> Any:
                out = script(keys=keys, args=args)
                calls.append((name, out[0] if name == UPDATE_SCRIPT else None))
                return out
            return call

    monkeypatch.setattr(store, "scripts", Counting())
    return calls


@pytest.mark.parametrize("status, outcome", [("todo", "released"), ("done", "completed"), ("backlog", "released")])
def test_a_fenced_write_after_a_claim_of_this_process_is_one_command(private_store, status, outcome):
    store = private_store  # commandstats are server-wide: a Redis of its own
    for i in range(3):
        store.issues.create({"title": f"t{i}", "type": "task", "status": "todo"})
    warm = store.dispatch.next("agent")
    fenced(store, warm, {"status": "todo"})  # the scripts are loaded (a first EVALSHA answers NOSCRIPT)
    body = store.dispatch.next("agent")
    store.r.config_resetstat()
    fenced(store, body, {"status": status, "agentSummary": "summary"})
    stats = {k: v["calls"] for k, v in store.r.info("commandstats").items()}
    # (the script's own commands are counted too: HGETALL, HSET, ...; no transaction, no read before)
    assert stats["cmdstat_evalsha"] == 1 and not {"cmdstat_watch", "cmdstat_multi", "cmdstat_eval"} & stats.keys()
    assert store.r.hget(store.keys.session(body["claim"]["sessionId"]), "status") == outcome
    assert store.issues.get(body["issue"]["id"])["status"] == status


def test_a_write_without_a_prediction_takes_the_transaction(private_store):
    store = private_store
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    store.issues.expected.take(body["issue"]["id"], None)  # as if claimed by another process
    store.r.config_resetstat()
    fenced(store, body, {"status": "todo"})
    stats = {k: v["calls"] for k, v in store.r.info("commandstats").items()}
    assert stats["cmdstat_watch"] == 1 and stats["cmdstat_exec"] == 1 and "cmdstat_evalsha" not in stats
    assert store.issues.get(body["issue"]["id"])["status"] == "todo"


def test_a_prediction_that_no_longer_holds_writes_nothing_and_the_update_stages_again_from_what_is_there(
        store, monkeypatch):
    for i in range(2):
        store.issues.create({"title": f"t{i}", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    iid = body["issue"]["id"]
    store.r.hset(store.keys.issue(iid), "priority", "3")  # another writer, after the claim
    calls = counted_scripts(store, monkeypatch)
    row = fenced(store, body, {"status": "todo"})
    assert calls == [(UPDATE_SCRIPT, 0), (UPDATE_SCRIPT, 1)]  # no read of its own: the miss answered it
    assert row["priority"] == 3 and store.issues.get(iid)["priority"] == 3  # staged from the fresh read
    ready = store.r.zscore(store.keys.dispatch_ready(), f"{iid}|")
    assert ready is not None  # and re-entered with the priority it has now
    store.issues.update(iid, {"priority": 0})
    assert store.r.zscore(store.keys.dispatch_ready(), f"{iid}|") != ready


def test_a_session_released_between_the_read_and_the_write_fails_the_fence_on_the_retry(store, monkeypatch):
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    sid = body["claim"]["sessionId"]
    store.r.hset(store.keys.session(sid), "status", "released")  # after the claim's prediction
    with pytest.raises(Conflict):
        fenced(store, body, {"status": "todo"})
    assert store.issues.get(body["issue"]["id"])["status"] == "in_progress"  # nothing written


def test_a_lease_renewed_since_the_claim_is_not_refused_by_the_prediction(store, redis_client, settings, clock):
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    sid = body["claim"]["sessionId"]
    clock.advance(settings.lease_seconds / 2)
    other = build(redis_client, settings, clock)  # another process renews the lease
    other.dispatch.heartbeat(sid, "agent", None)
    clock.advance(settings.lease_seconds / 2 + 1)  # past the expiry the claim predicted, within the renewed one
    row = fenced(store, body, {"status": "todo"})
    assert row["status"] == "todo"
    assert store.r.hget(store.keys.session(sid), "status") == "released"


def test_a_stale_token_writes_nothing(store):
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    fenced(store, body, {"status": "todo"})
    again = store.dispatch.next("agent")
    with pytest.raises(Conflict):
        fenced(store, body, {"status": "done"})  # the previous claim's token
    assert store.issues.get(again["issue"]["id"])["status"] == "in_progress"
    assert store.r.hget(store.keys.session(again["claim"]["sessionId"]), "status") == "active"


def test_a_fenced_write_that_reads_under_watch_takes_the_transaction(store, monkeypatch):
    made: list[object] = []
    original = Issues.update_one
    monkeypatch.setattr(Issues, "update_one", lambda self, *a, **kw: made.append(original(self, *a, **kw)) or made[-1])
    blocker = store.issues.create({"title": "blocker", "type": "task", "status": "todo"})
    blocked = store.issues.create({"title": "blocked", "type": "task", "status": "todo"})
    store.relations.create(blocker["id"], "blocks", blocked["id"])
    body = store.dispatch.next("agent")
    assert body["issue"]["id"] == blocker["id"]
    # Resolving an issue reads the issues it blocks: expected none, the script answers one, and reading
    # their rows needs the transaction.
    fenced(store, body, {"status": "done"})
    assert made == [None]
    assert store.r.zscore(store.keys.dispatch_ready(), f"{blocked['id']}|") is not None  # unblocked
    assert store.r.hget(store.keys.session(body["claim"]["sessionId"]), "status") == "completed"
    parent = store.issues.create({"title": "parent", "type": "plan"})
    body = store.dispatch.next("agent")
    fenced(store, body, {"parentId": parent["id"]})  # never tried: the parent is checked under WATCH
    assert made == [None]
    assert store.issues.get(blocked["id"])["parentId"] == parent["id"]


def test_concurrent_fenced_and_plain_updates_of_one_issue_lose_nothing(store, redis_client, settings, clock):
    other = build(redis_client, settings, clock)  # a second process's store
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    iid = body["issue"]["id"]
    lock = threading.Lock()
    titles: list[str] = []

    def retitle(s: Any, n: int) -> None:
        s.issues.update(iid, {"title": f"title {n}"})
        with lock:
            titles.append(f"title {n}")

    at_once([lambda n=n: retitle(store if n % 2 else other, n) for n in range(20)]
            + [lambda: fenced(store, body, {"status": "todo", "agentSummary": "x"})])
    row = store.issues.get(iid)
    assert row["status"] == "todo" and row["agentSummary"] == "x"  # the fenced write is in
    assert row["title"] in titles and len(titles) == 20
    assert store.r.hget(store.keys.session(body["claim"]["sessionId"]), "status") == "released"
    assert store.r.hget(store.keys.dispatch_state(iid), "session") is None


def test_the_predicted_digest_is_the_one_the_script_computes(store):
    issue = store.issues.create({"title": "ü ]} \" \\ \n", "description": "", "type": "task", "status": "todo"})
    body = store.dispatch.next("agent")
    sid = body["claim"]["sessionId"]
    keys = [store.keys.issue(issue["id"]), store.keys.dispatch_state(issue["id"]), store.keys.session(sid)]
    flat, named, held, digest, blocking = store.scripts[FENCED_READ](keys=keys, args=["digest"])
    assert blocking == []  # (not asked for)
    assert read_digest(flat, named, held) == digest
    assert read_digest(flat, None, []) != digest
    assert read_digest(flat, named, held[:-2]) != digest
    assert read_digest(["a", "bc"], None, []) != read_digest(["ab", "c"], None, [])  # lengths delimit
    assert store.issues.expected.take(issue["id"], sid) == (flat, sid, held, digest, None)  # what the claim predicted
    keys.append(store.keys.dispatch_blocking(issue["id"]))
    *_, with_blocking, blocking = store.scripts[FENCED_READ](keys=keys, args=["digest"])
    assert blocking == [] and with_blocking == read_digest(flat, named, held, []) != digest


@pytest.mark.parametrize("size", [0, 1, 31, 32, 255, 256, 65535, 65536])
@pytest.mark.parametrize("fields", [1, 7, 8, 40])
def test_the_digest_is_the_scripts_for_every_messagepack_length_class(store, size, fields):
    # cmsgpack picks a header by byte length (fixstr < 32, str8, str16, str32) and by item count
    # (fixarray < 16, array16): read_digest must do the same, counting bytes, not characters.
    issue_key, state_key, session_key = (store.keys.issue("m"), store.keys.dispatch_state("m"),
                                         store.keys.session("m"))
    text = ("é" * size)[:size // 2] + "x" * (size - 2 * (size // 2))  # `size` bytes of UTF-8
    store.r.hset(issue_key, mapping={f"f{i}": text if i % 2 else "v" for i in range(fields)})
    store.r.hset(session_key, mapping={"id": "m", "note": text})
    blocking_key = store.keys.dispatch_blocking("m")
    store.r.hset(blocking_key, mapping={f"b{i}": "1" for i in range(fields)})
    for named in (None, "s" * size):
        if named is None:
            store.r.hdel(state_key, "session")
        else:
            store.r.hset(state_key, "session", named)
        keys = [issue_key, state_key, session_key]
        flat, got_named, held, digest, _ = store.scripts[FENCED_READ](keys=keys, args=["digest"])
        assert got_named == named
        assert read_digest(flat, named, held) == digest
        *_, with_blocking, blocking = store.scripts[FENCED_READ](keys=[*keys, blocking_key], args=["digest"])
        assert len(blocking) == fields
        assert read_digest(flat, named, held, blocking) == with_blocking != digest


def test_the_predictions_are_bounded(store, monkeypatch):
    monkeypatch.setattr(one_command, "EXPECTED_READS", 3)
    for n in range(5):
        store.issues.expected.put(f"i{n}", ["id", f"i{n}"], "s", [])
    assert [n for n in range(5) if f"i{n}" in store.issues.expected] == [2, 3, 4]
    assert store.issues.expected.take("i3", "another session") is None and "i3" not in store.issues.expected
    assert store.issues.expected.take("i4", "s") == (["id", "i4"], "s", [], read_digest(["id", "i4"], "s", []), None)


def test_an_unknown_step_is_refused_before_anything_is_written(store):
    issue = store.issues.create({"title": "t", "type": "task", "status": "todo"})
    keys = [store.keys.issue(issue["id"]), store.keys.dispatch_state(issue["id"]), store.keys.session("none")]
    _, _, _, digest, _ = store.scripts[FENCED_READ](keys=keys, args=["digest"])
    with pytest.raises(Exception, match="unknown step"):
        store.scripts[UPDATE_SCRIPT](keys=[keys[0], keys[0], *keys],
                                     args=[2, "HSET", 1, 2, "DEL", 1, 0, "title", "x", 3, digest])
    assert store.issues.get(issue["id"])["title"] == "t"
    store.scripts[UPDATE_SCRIPT](keys=[keys[0], *keys], args=[1, "HSET", 1, 2, "title", "x", 3, digest])
    assert store.issues.get(issue["id"])["title"] == "x"  # (the same call with known steps writes)
