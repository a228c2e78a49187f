"""The claim/re-open cycle (issue 12): a PATCH that puts a claimed issue back to ``todo`` with its
claim token reads the claim's session once per transaction attempt (the fence and the dispatch
hook share the read), and a retried attempt reads it again."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from loop.clock import FrozenClock
from loop.dispatch import sessions
from loop.dispatch.claim import CLAIM_SCRIPT
from loop.dispatch.service import ClaimFence
from loop.errors import Conflict
from loop.runtime import Loop
from tests.redis_server import monitored
from tests.test_dispatch_bounds import Replaced


def claimed(store: Loop) -> tuple[str, str, str]:
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body: Any = store.dispatch.next("agent")
    return body["issue"]["id"], body["claim"]["sessionId"], body["claim"]["token"]


def test_reopening_a_claimed_issue_with_its_token_reads_the_session_once(private_store: Loop) -> None:
    store = private_store
    issue_id, sid, token = claimed(store)
    # Claimed by another process: no read is expected, so the write takes the transaction (a claim of
    # this process makes it one command: tests/test_issue_update_one.py).
    store.issues.expected.take(issue_id, None)
    sent_packets: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def send(conn: Any, command: Any, check_health: bool = True) -> None:
        sent_packets.append(1)
        original(conn, command, check_health)

    def reopen() -> None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(redis.connection.AbstractConnection, "send_packed_command", send)
            store.issues.update(issue_id, {"status": "todo"}, check=store.dispatch.fence(token))

    lines = monitored(store.r, reopen)
    reads = [ln["command"] for ln in lines if ln["command"].startswith(("HGETALL", "HGET "))
             and not ln["command"].endswith(" blocked")]  # (the ready-set script's own read, in the MULTI)
    assert reads == [f"HGETALL {store.keys.issue(issue_id)}", f"HGET {store.keys.dispatch_state(issue_id)} session",
                     f"HGETALL {store.keys.session(sid)}"]
    # Sent by the client: one WATCH of the issue, its dispatch state and the token's session with
    # one EVAL reading all three (one packet), then the MULTI ... EXEC: 2 round trips (7 before).
    assert len(sent_packets) == 2
    sent = [ln["command"].split(" ")[0] for ln in lines if ln.get("client_type") != "lua"][:-1]  # (less the ECHO)
    assert sent[:3] == ["WATCH", "EVAL", "MULTI"] and sent[-1] == "EXEC"
    assert lines[0]["command"] == (f"WATCH {store.keys.issue(issue_id)} {store.keys.dispatch_state(issue_id)} "
                                   f"{store.keys.session(sid)}")
    assert store.r.hget(store.keys.session(sid), "status") == "released"
    assert (store.issues.get(issue_id) or {})["status"] == "todo"


def test_a_retried_reopen_reads_the_session_again_and_sees_it_released_meanwhile(store: Loop) -> None:
    issue_id, sid, token = claimed(store)
    fence = store.dispatch.fence(token)
    attempts: list[int] = []

    def check(pipe: Any, old: Any) -> None:
        attempts.append(1)
        fence(pipe, old)
        if len(attempts) == 1:  # another client releases the claim after the first attempt's read
            store.r.hset(store.keys.session(sid), "status", "released")

    with pytest.raises(Conflict):
        store.issues.update(issue_id, {"status": "todo"}, check=check)
    assert len(attempts) == 2  # the first EXEC failed (watched session changed), the retry re-read it
    assert (store.issues.get(issue_id) or {})["status"] == "in_progress"


def test_a_retried_fenced_reopen_reads_the_session_again_and_sees_it_released_meanwhile(store: Loop) -> None:
    issue_id, sid, token = claimed(store)
    attempts: list[int] = []

    class Racing(ClaimFence):
        def __call__(self, pipe: Any, old: Any) -> None:
            attempts.append(1)
            super().__call__(pipe, old)
            if len(attempts) == 1:  # another client releases the claim after the first attempt's read
                store.r.hset(store.keys.session(sid), "status", "released")

    with pytest.raises(Conflict):
        store.issues.update(issue_id, {"status": "todo"}, check=Racing(store.dispatch, token))
    assert len(attempts) == 2
    assert (store.issues.get(issue_id) or {})["status"] == "in_progress"


def test_a_token_without_a_session_id_from_an_older_loop_still_fences(store: Loop) -> None:
    issue_id, sid, _ = claimed(store)
    old_style = "claim_" + "ab" * 32
    store.r.hset(store.keys.session(sid), "tokenHash", sessions.token_digest(old_style))
    assert sessions.token_session(old_style) is None
    with pytest.raises(Conflict):
        store.issues.update(issue_id, {"status": "todo"}, check=store.dispatch.fence("claim_" + "cd" * 32))
    store.issues.update(issue_id, {"status": "todo"}, check=store.dispatch.fence(old_style))
    assert store.r.hget(store.keys.session(sid), "status") == "released"


def test_the_token_of_a_previous_claim_is_refused_after_the_issue_was_claimed_again(store: Loop) -> None:
    issue_id, first, old_token = claimed(store)
    store.issues.update(issue_id, {"status": "todo"}, check=store.dispatch.fence(old_token))
    again: Any = store.dispatch.next("agent")
    assert again["issue"]["id"] == issue_id
    with pytest.raises(Conflict):
        store.issues.update(issue_id, {"status": "todo"}, check=store.dispatch.fence(old_token))
    second = again["claim"]["sessionId"]
    assert store.r.hget(store.keys.session(second), "status") == "active"
    assert (store.issues.get(issue_id) or {})["status"] == "in_progress"
    store.issues.update(issue_id, {"status": "todo"}, check=store.dispatch.fence(again["claim"]["token"]))
    assert store.r.hget(store.keys.session(second), "status") == "released"


def test_a_token_naming_a_session_of_another_issue_is_refused(store: Loop) -> None:
    issue_a, _, token_a = claimed(store)
    issue_b, sid_b, _ = claimed(store)
    with pytest.raises(Conflict):
        store.issues.update(issue_b, {"status": "todo"}, check=store.dispatch.fence(token_a))
    assert store.r.hget(store.keys.session(sid_b), "status") == "active"
    assert (store.issues.get(issue_b) or {})["status"] == "in_progress"


def test_the_claim_after_a_reopen_names_the_reopened_issue_and_wins_its_first_script_call(
        store: Loop, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    # The oldest todo issue is the best; the claim of it remembers the rest of the head.
    ids = []
    for i in range(3):
        ids.append(store.issues.create({"title": f"t{i}", "type": "task", "status": "todo"})["id"])
        clock.advance(60)
    first = store.dispatch.claim("agent")
    assert first is not None and first.issue["id"] == ids[0]
    store.issues.update(ids[0], {"status": "todo"}, check=store.dispatch.fence(first.token))
    real = store.scripts[CLAIM_SCRIPT]
    replies: list[Any] = []

    def counted(keys: list[str], args: list[Any]) -> Any:
        reply = real(keys=keys, args=args)
        replies.append(reply[0])
        return reply

    monkeypatch.setattr(store, "scripts", Replaced(store.scripts, CLAIM_SCRIPT, counted))
    again = store.dispatch.claim("agent")
    # Re-opened, it is the best again: the remembered head (read before) could not name it, so
    # without the re-open's hint this claim's first call answered "retry".
    assert again is not None and again.issue["id"] == ids[0]
    assert replies == ["ok"]
    nxt = store.dispatch.claim("agent")  # the remembered head still serves the claim after it
    assert nxt is not None and nxt.issue["id"] == ids[1]
    assert replies == ["ok", "ok"]


def test_a_hint_naming_an_issue_no_longer_ready_costs_nothing_but_its_keys(store: Loop) -> None:
    ids = [store.issues.create({"title": f"t{i}", "type": "task", "status": "todo"})["id"] for i in range(2)]
    store.dispatch.claimer.entered(f"{ids[1]}|", None)  # a member not in the set at all
    store.issues.update(ids[1], {"status": "backlog"})  # and the hinted issue left the ready set
    claim = store.dispatch.claim("agent")
    assert claim is not None and claim.issue["id"] == ids[0]
    assert store.dispatch.claim("agent") is None
