"""The claim/re-open cycle (issue 12): a PATCH that puts a claimed issue back to ``todo`` with its
claim token reads the claim's session once per transaction attempt (the fence and the dispatch
hook share the read), and a retried attempt reads it again."""

from __future__ import annotations

from typing import Any

import pytest

from loop.errors import Conflict
from loop.runtime import Loop
from tests.redis_server import monitored


def claimed(store: Loop) -> tuple[str, str, str]:
    store.issues.create({"title": "t", "type": "task", "status": "todo"})
    body: Any = store.dispatch.next("agent")
    return body["issue"]["id"], body["claim"]["sessionId"], body["claim"]["token"]


def test_reopening_a_claimed_issue_with_its_token_reads_the_session_once(private_store: Loop) -> None:
    store = private_store
    issue_id, sid, token = claimed(store)
    lines = monitored(store.r, lambda: store.issues.update(issue_id, {"status": "todo"},
                                                           check=store.dispatch.fence(token)))
    reads = [ln["command"] for ln in lines
             if ln.get("client_type") != "lua" and ln["command"].startswith(("HGETALL", "HGET "))]
    assert reads == [f"HGETALL {store.keys.issue(issue_id)}", f"HGET {store.keys.dispatch_state(issue_id)} session",
                     f"HGETALL {store.keys.session(sid)}"]
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
