"""Hypothesis stateful test of dispatch: create/block/resolve/claim/heartbeat/expire/complete/release.

After every step: each issue is in exactly one dispatch state, the ready sets never hold a
blocked issue, each active claim has exactly one holder, and the incremental indexes equal a
from-scratch recomputation (:func:`loop.dispatch.audit.audit`).
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from loop.clock import FrozenClock
from loop.dispatch.audit import audit, expected
from loop.dispatch.scoring import parse_member
from loop.errors import BusinessRuleError, Conflict, NotFound
from loop.runtime import build
from loop.settings import Settings
from loop.store import connect
from loop.store.reindex import check

LEASE = 60


class DispatchMachine(RuleBasedStateMachine):
    url = ""
    issues = Bundle("issues")
    relations = Bundle("relations")
    claims = Bundle("claims")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock()
        cfg = Settings(namespace=f"t-sm-{uuid.uuid4().hex[:10]}", lease_seconds=LEASE, max_lease_expiries=2)
        self.store = build(connect(self.url), cfg, self.clock)
        self.projects = [self.store.projects.create({"name": f"p{n}"})["id"] for n in range(2)]
        self.goal = self.store.goals.create({"title": "g", "projectId": self.projects[0], "status": "achieved"})

    def teardown(self) -> None:
        self.store.delete_namespace()

    # ------------------------------------------------------------------ rules
    @rule(target=issues, status=st.sampled_from(["todo", "todo", "backlog", "in_progress"]),
          priority=st.integers(0, 4), kind=st.sampled_from(["task", "signal", "plan"]), project=st.integers(0, 2))
    def create(self, status, priority, kind, project):
        self.clock.advance(61)
        pid = self.projects[project] if project < 2 else None
        data = {"title": "t", "type": kind, "status": status, "priority": priority, "projectId": pid}
        return self.store.issues.create({k: v for k, v in data.items() if v is not None})["id"]

    @rule(target=relations, a=issues, b=issues, direction=st.sampled_from(["blocks", "blocked_by", "related"]))
    def relate(self, a, b, direction):
        if a == b:
            return None
        try:
            if direction == "blocked_by":
                return self.store.relations.create(b, "blocked_by", a)["id"]
            return self.store.relations.create(a, direction, b)["id"]
        except BusinessRuleError:  # it would close a blocking cycle (refused, nothing written)
            return None

    @rule(relation=consumes(relations))
    def unrelate(self, relation):
        if relation is not None:
            self.store.relations.delete(relation)

    @rule(issue=issues, status=st.sampled_from(["done", "canceled", "todo", "backlog", "in_progress"]))
    def set_status(self, issue, status):
        if self.store.issues.get(issue)["deletedAt"] is None:
            self.store.issues.update(issue, {"status": status})

    @rule(issue=issues, priority=st.integers(0, 4), project=st.integers(0, 2))
    def rescore(self, issue, priority, project):
        if self.store.issues.get(issue)["deletedAt"] is None:
            pid = self.projects[project] if project < 2 else None
            self.store.issues.update(issue, {"priority": priority, "projectId": pid})

    @rule(issue=issues)
    def delete(self, issue):
        if self.store.issues.get(issue)["deletedAt"] is None:
            self.store.issues.delete(issue)

    @rule(active=st.booleans())
    def toggle_goal(self, active):
        self.store.goals.update(self.goal["id"], {"status": "active" if active else "achieved"})

    @rule(target=claims, project=st.integers(0, 2))
    def claim(self, project):
        pid = self.projects[project] if project < 2 else None
        ready, _ = expected(self.store)
        pool = {m: s for m, s in ready.items() if pid is None or parse_member(m)[1] == pid}
        claim = self.store.dispatch.claim("agent", pid)
        if not pool:
            assert claim is None
            return None
        assert claim is not None
        best = max(pool.values())
        got = [s for m, s in pool.items() if parse_member(m)[0] == claim.issue["id"]]
        assert got and abs(got[0] - best) < 1e-9, "the claim did not take the best eligible issue"
        return claim

    @rule(claim=claims)
    def heartbeat(self, claim):
        if claim is None:
            return
        try:
            self.store.dispatch.heartbeat(claim.session_id, "agent", claim.token)
        except Conflict:
            assert self.store.dispatch.get_session(claim.session_id)["status"] != "active"

    @rule(seconds=st.sampled_from([30, LEASE + 1]))
    def time_passes(self, seconds):
        self.clock.advance(seconds)
        self.store.dispatch.expire_due()

    @rule(claim=claims, summary=st.sampled_from([None, "did it"]))
    def complete(self, claim, summary):
        if claim is None:
            return
        try:
            self.store.issues.update(claim.issue["id"], {"status": "done", "agentSummary": summary},
                                     check=self.store.dispatch.fence(claim.token))
        except Conflict:
            return  # stale: the claim ended meanwhile
        except NotFound:
            assert self.store.issues.get(claim.issue["id"])["deletedAt"] is not None
            return  # the issue was deleted meanwhile (its session was closed then)
        assert self.store.dispatch.get_session(claim.session_id)["status"] == "completed"

    @rule(claim=claims)
    def release(self, claim):
        if claim is None:
            return
        try:
            self.store.dispatch.release(claim.session_id, "agent", claim.token, "giving up")
        except Conflict:
            assert self.store.dispatch.get_session(claim.session_id)["status"] != "active"

    # ------------------------------------------------------------------ invariants
    @invariant()
    def indexes_match_a_recomputation(self):
        assert audit(self.store) == []
        assert check(self.store) == []  # loop admin check: every derived index, not only dispatch's

    @invariant()
    def each_issue_is_in_exactly_one_state_and_ready_never_holds_a_blocked_issue(self):
        r, k = self.store.r, self.store.keys
        ready = {parse_member(m)[0] for m in r.zrange(k.dispatch_ready(), 0, -1)}
        _, blocked = expected(self.store)
        holders: dict[str, list[str]] = {}
        for sid in r.zrange(k.dispatch_leases(), 0, -1):
            holders.setdefault(r.hget(k.session(sid), "issueId"), []).append(sid)
        for issue_id in (i["id"] for i in self.store.issues.list({}, 10**6, 0)[0]):
            row = self.store.issues.get(issue_id)
            states = [issue_id in ready, issue_id in holders,
                      row["status"] == "todo" and blocked.get(issue_id, 0) > 0,
                      row["status"] not in ("todo", "in_progress") or (
                          row["status"] == "in_progress" and issue_id not in holders)]
            assert sum(states) == 1, (row["status"], states)
            assert not (issue_id in ready and blocked.get(issue_id, 0) > 0)

    @invariant()
    def each_active_claim_has_exactly_one_holder(self):
        r, k = self.store.r, self.store.keys
        sessions = r.zrange(k.dispatch_leases(), 0, -1)
        issues = [r.hget(k.session(s), "issueId") for s in sessions]
        assert len(issues) == len(set(issues))
        for sid, iid in zip(sessions, issues, strict=True):
            assert r.hget(k.dispatch_state(iid), "session") == sid
            assert r.hget(k.issue(iid), "agentSessionId") == sid


@pytest.mark.slow
def test_dispatch_state_machine_keeps_its_invariants(redis_url):
    class Machine(DispatchMachine):
        url = redis_url

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=30, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_the_audit_reports_corrupted_indexes(store):
    issue = store.issues.create({"title": "t", "type": "task", "status": "todo"})
    blocker = store.issues.create({"title": "b", "type": "task", "status": "backlog"})
    assert audit(store) == []
    store.r.zadd(store.keys.dispatch_ready(), {"ghost|": 1.0})
    store.r.hset(store.keys.dispatch_state(issue["id"]), "blocked", 2)
    store.relations.create(blocker["id"], "related", issue["id"])
    problems = audit(store)
    assert "ghost| is in the ready set but not eligible" in problems
    assert f"issue {issue['id']} has blocked=2, expected 0" in problems
