"""The whole cycle (issue 13), proven against a live gunicorn + worker + real Redis, with time
injected (tests/offset_clock.py, installed first in both processes: their clock is shifted by the
ms in a file).

Scripted agents claim through ``GET /api/dispatch/next`` and do only what the prompt they were
handed tells them (each step asserts the prompt says so): a PostHog signal -> triage -> a
hypothesis (child of the signal) -> two tasks in blocking order -> a monitor 48 h ahead that is
not dispatched early -> the check -> ``invalidated`` -> Loop's own signal enters triage -> a second
hypothesis -> its monitor -> ``validated``. Then the chain is walked from the first signal to the
last outcome.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loop.clock import parse_iso
from tests.live_server import LiveServer, start_live_server
from tests.offset_clock import CLOCK_ENV, WORKER

pytestmark = pytest.mark.slow

HOUR_MS = 3_600_000
CLOCK_FILE = Path(tempfile.mkdtemp(prefix="loop-clock-")) / "offset"


@pytest.fixture(scope="module")
def live(redis_url: str) -> Iterator[LiveServer]:
    CLOCK_FILE.write_text("0")
    server = start_live_server(redis_url, {CLOCK_ENV: str(CLOCK_FILE)}, app="tests.offset_clock:app",
                               worker_code=WORKER)
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()


def advance(ms: int) -> None:
    CLOCK_FILE.write_text(str(int(CLOCK_FILE.read_text() or 0) + ms))


def server_now(loop: Any) -> int:
    """The server's (shifted) time, as it stamps a write."""
    probe = loop.issues.create("clock probe", "task", status="backlog")
    loop.issues.delete(probe["id"])
    return parse_iso(probe["createdAt"])


def iso_in(loop: Any, ms: int) -> str:
    from loop.clock import iso

    return str(iso(server_now(loop) + ms))


def claim(loop: Any, expect_type: str, *, says: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    task = loop.dispatch.next()
    assert task is not None, f"expected a {expect_type} to be dispatched"
    assert task["issue"]["type"] == expect_type, task["issue"]
    for phrase in says:
        assert phrase in task["prompt"], f"the {expect_type} prompt does not say {phrase!r}"
    return task["issue"], task["claim"]["token"]


def wait_for(fn: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def plan_hypothesis(loop: Any) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The hypothesis-planning agent: tasks in order, the monitor 48 h ahead related to it, done."""
    hyp, token = claim(loop, "hypothesis", says=("blocked_by", "notBefore", "related", "monitor"))
    detail = loop.issues.get(hyp["id"])
    parent = detail["parentId"]
    first = loop.issues.create("Measure the current baseline", "task", status="backlog", priority=2, parent_id=parent)
    second = loop.issues.create("Apply the change and compare", "task", status="backlog", priority=2, parent_id=parent)
    loop.relations.create(second["id"], "blocked_by", first["id"])
    for t in (first, second):
        loop.issues.update(t["id"], status="todo")
    monitor = loop.issues.create("Check whether the hypothesis held", "monitor", status="todo", priority=2,
                                 parent_id=parent, not_before=iso_in(loop, 48 * HOUR_MS))
    loop.relations.create(monitor["id"], "related", hyp["id"])
    loop.issues.complete(hyp["id"], "Plan: baseline, change, monitor in 48 h", claim_token=token)
    return hyp, [first["id"], second["id"]], monitor


def run_tasks(loop: Any, order: list[str]) -> None:
    for expected in order:
        task, token = claim(loop, "task")
        assert task["id"] == expected  # the blocked task waits for the first
        loop.issues.complete(task["id"], "done", claim_token=token)


def check_monitor(loop: Any, live: LiveServer, monitor: dict[str, Any], outcome: str) -> None:
    assert loop.dispatch.next() is None  # scheduled 48 h ahead: not dispatched early
    assert [i["id"] for i in loop.dispatch.scheduled()] == [monitor["id"]]
    advance(47 * HOUR_MS)
    assert loop.dispatch.next() is None
    advance(HOUR_MS + 1000)
    # The worker's 1 s scheduler tick moves it into the ready set without any claim.
    r, ns = live.redis(), f"{{{live.namespace}}}"
    wait_for(lambda: r.zscore(f"{ns}:dispatch:ready", f"{monitor['id']}|") is not None, timeout=5)
    got, token = claim(loop, "monitor", says=('"outcome"', "notBefore", "invalidated"))
    assert got["id"] == monitor["id"]
    loop.issues.update(monitor["id"], claim_token=token, status="done", outcome=outcome,
                       agent_summary=f"conversion measured: {outcome}")


def test_the_whole_cycle_runs_from_a_posthog_signal_to_a_validated_outcome(live: LiveServer) -> None:
    loop = live.client()
    # 1. A PostHog metric drop arrives; the worker files it as a signal and its triage issue.
    loop.webhooks.posthog({"event": {"name": "signup_conversion"}, "name": "signup_conversion",
                           "value": -35, "timeframe": "24h", "id": uuid.uuid4().hex}, "posthog-secret")
    first_signal = wait_for(lambda: loop.signals.list(source="posthog").data)[0]
    # 2. Triage: a hypothesis under the signal.
    triage, token = claim(loop, "signal", says=('"type": "hypothesis"',))
    assert triage["id"] == first_signal["issueId"]
    hyp1 = loop.issues.create("The new signup form rejects valid emails", "hypothesis", status="todo",
                              parent_id=triage["id"], hypothesis={
                                  "statement": "Form validation rejects valid emails", "confidence": 0.6,
                                  "evidence": ["drop started with the release"],
                                  "validationCriteria": "conversion back above 3% within 48 h"})
    loop.issues.complete(triage["id"], "Filed hypothesis", claim_token=token)
    # 3. Plan, 4. tasks in order, 5. the monitor waits 48 h, then 6. is invalidated.
    _, tasks1, monitor1 = plan_hypothesis(loop)
    run_tasks(loop, tasks1)
    check_monitor(loop, live, monitor1, "invalidated")
    # 7. Loop filed the new signal itself; it enters triage and is dispatched next.
    loop_signals = loop.signals.list(source="loop")
    assert loop_signals.total == 1
    second_signal = loop_signals.data[0]
    triage2, token = claim(loop, "signal")
    assert triage2["id"] == second_signal["issueId"]
    hyp2 = loop.issues.create("Emails with a plus sign are rejected", "hypothesis", status="todo",
                              parent_id=triage2["id"], hypothesis={
                                  "statement": "The plus-sign regex", "confidence": 0.8, "evidence": ["logs"],
                                  "validationCriteria": "conversion back above 3%"})
    loop.issues.complete(triage2["id"], "Filed a second hypothesis", claim_token=token)
    _, tasks2, monitor2 = plan_hypothesis(loop)
    run_tasks(loop, tasks2)
    check_monitor(loop, live, monitor2, "validated")
    assert loop.dispatch.next() is None
    assert loop.signals.list(source="loop").total == 1  # validated closes the chain

    # The chain, auditable from the first signal to the last outcome.
    assert loop.issues.get(hyp1["id"])["parentId"] == first_signal["issueId"]
    assert loop.issues.get(hyp1["id"])["outcome"] == "invalidated"
    m1 = loop.issues.get(monitor1["id"])
    assert (m1["status"], m1["outcome"], m1["parentId"]) == ("done", "invalidated", first_signal["issueId"])
    assert [(r["type"], r["relatedIssueId"]) for r in m1["relations"]] == [("related", hyp1["id"])]
    payload = second_signal["payload"]
    assert (payload["monitorId"], payload["hypothesisId"]) == (monitor1["id"], hyp1["id"])
    t2 = loop.issues.get(second_signal["issueId"])
    assert [(r["type"], r["relatedIssueId"]) for r in t2["relations"]] == [("related", monitor1["id"])]
    assert loop.issues.get(hyp2["id"])["parentId"] == t2["id"]
    assert loop.issues.get(hyp2["id"])["outcome"] == "validated"
    m2 = loop.issues.get(monitor2["id"])
    assert (m2["outcome"], [r["relatedIssueId"] for r in m2["relations"]]) == ("validated", [hyp2["id"]])
    for issue_id in (first_signal["issueId"], hyp1["id"], *tasks1, monitor1["id"], t2["id"], hyp2["id"],
                     *tasks2, monitor2["id"]):
        sessions = loop.issues.sessions(issue_id).data
        assert [s["status"] for s in sessions] == ["completed"], (issue_id, sessions)
