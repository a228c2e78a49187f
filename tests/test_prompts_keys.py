"""The prompt context's Lua keeps the project's rule (every key a script touches is in KEYS,
proved with MONITOR on a private redis-server), and bounds how many siblings/children it loads."""

from __future__ import annotations

from typing import Any

from loop.prompts import context as ctxmod
from loop.scripts import STEPS_SCRIPT
from loop.signals.intake import Intake
from loop.signals.providers import Delivery
from loop.store import RedisStore
from tests.redis_server import monitored, undeclared

PROMPT_SCRIPTS = ("prompt_context", "prompt_rows", STEPS_SCRIPT)
def neighbourhood(store: RedisStore) -> tuple[dict[str, Any], dict[str, Any]]:
    """A claimed child with siblings, a label, relations both ways (a done blocker, a dependent), a
    goal found by project, earlier sessions; returns (issue, claim)."""
    project = store.projects.create({"name": "P"})
    store.goals.create({"title": "G", "projectId": project["id"]})
    label = store.labels.ensure("backend", "#000000")
    parent = store.issues.create({"title": "parent", "type": "plan", "projectId": project["id"]})
    for n in range(3):
        store.issues.create({"title": f"sib {n}", "type": "task", "parentId": parent["id"]})
    me = store.issues.create({"title": "me", "type": "task", "status": "todo", "projectId": project["id"],
                              "parentId": parent["id"], "labelIds": [label["id"]]})
    done = store.issues.create({"title": "done blocker", "type": "task", "status": "done"})
    later = store.issues.create({"title": "waits for me", "type": "task", "status": "backlog"})
    store.relations.create(me["id"], "blocked_by", done["id"])
    store.relations.create(later["id"], "blocked_by", me["id"])
    claim = store.dispatch.claim("agent", project["id"])
    assert claim is not None and claim.issue["id"] == me["id"]
    store.dispatch.release(claim.session_id, "agent", None, "try again")
    claim = store.dispatch.claim("agent", project["id"])
    assert claim is not None
    return claim.issue, {"sessionId": claim.session_id, "expiresAt": claim.expires_at}


def test_every_key_the_prompt_scripts_touch_is_declared_in_keys(private_store: RedisStore) -> None:
    store = private_store
    issue, claim = neighbourhood(store)
    store.prompts.render_for_dispatch(issue, claim)  # warms the catalog
    # Dispatch's blocker maps name every relation's target, so phase 2 reads them all; without the
    # map (no dispatch), the relation's target costs a third trip, which must keep the rule too.
    store.r.delete(store.keys.dispatch_blockers(issue["id"]))
    shas = {store.scripts[n].sha: n for n in PROMPT_SCRIPTS}
    ran_scripts: list[str] = []
    prompts: list[Any] = []

    def declared_of(args: list[str]) -> set[str] | None:
        if args[0].upper() == "EVALSHA" and args[1] in shas:
            ran_scripts.append(shas[args[1]])
            return set(args[3:3 + int(args[2])])
        if args[0].upper() in ("EVALSHA", "EVAL"):
            raise AssertionError(f"an unexpected script ran: {args[:2]}")
        return None

    def work() -> None:
        # record=True, as dispatch calls it: the session's versionId and the dispatched counter too.
        prompts.append(store.prompts.render_for_dispatch(issue, claim, record=True))
        prompts.append(store.prompts.render_for_dispatch(store.issues.get(issue["parentId"])))

    lines = monitored(store.r, work)
    ran, bad = undeclared(lines, declared_of)
    assert bad == []
    # Both phases ran for both issues, and the third trip for the done blocker; then the count.
    assert ran_scripts == ["prompt_context", "prompt_rows", "prompt_rows", STEPS_SCRIPT,
                           "prompt_context", "prompt_rows", STEPS_SCRIPT]
    assert {"HGETALL", "HMGET", "ZREVRANGE", "HKEYS", "SMEMBERS"} <= set(ran)
    # The prompt scripts only read: the use is counted (and, for a claim, recorded) after rendering, by
    # steps.lua (what a MULTI of these would write).
    writes = [c for c in ran if c in ("HINCRBY", "HSET", "HDEL")]
    assert writes == ["HINCRBY", "HSET", "HINCRBY", "HINCRBY"]
    text = prompts[0][0]
    assert "done blocker" in text and "sib 2" in text and "try again" in text


def test_the_webhook_accept_script_touches_only_its_declared_keys(private_store: RedisStore) -> None:
    store = private_store
    intake = Intake(store)
    delivery = Delivery("github", "d-1", "identity-1")
    marker = store.keys.webhook_delivery(delivery.provider, delivery.digest)
    outcomes: list[str] = []

    def declared_of(args: list[str]) -> set[str] | None:
        if args[0].upper() != "EVAL":
            return None
        # The body has spaces; the four KEYS follow "4" after it: the marker first.
        at = args.index(marker)
        assert args[at - 1] == "4"
        return set(args[at:at + 4])

    def work() -> None:
        outcomes.append(intake.accept(delivery, b"{}").status)
        outcomes.append(intake.accept(delivery, b"{}").status)  # a duplicate: LREM + DEL

    ran, bad = undeclared(monitored(store.r, work), declared_of)
    assert outcomes == ["queued", "duplicate"]
    assert bad == []
    assert {"GET", "SET", "LREM", "DEL"} <= set(ran)


def children(store: RedisStore, parent_id: str, n: int) -> list[dict[str, Any]]:
    return [store.issues.create({"title": f"child {i}", "type": "task", "parentId": parent_id}) for i in range(n)]


def test_a_large_family_shows_only_the_most_recent_fifty_in_creation_order(store: RedisStore) -> None:
    parent = store.issues.create({"title": "parent", "type": "plan"})
    kids = children(store, parent["id"], ctxmod.FAMILY_LIMIT + 6)
    me = kids[-3]  # not among the newest: the newest 50 others are all shown
    v = store.prompts.facts(store.issues.get(me["id"])).variables
    others = [k["id"] for k in kids if k["id"] != me["id"]]
    assert [s["id"] for s in v["siblings"]] == others[-ctxmod.FAMILY_LIMIT:]
    assert v["siblingsTotal"] == len(others) and v["siblingsTruncated"] is True
    assert v["childrenTotal"] == 0 and v["children"] == []
    root = store.prompts.facts(store.issues.get(parent["id"])).variables
    assert [c["id"] for c in root["children"]] == [k["id"] for k in kids][-ctxmod.FAMILY_LIMIT:]
    assert root["childrenTotal"] == len(kids) and root["childrenTruncated"] is True
    assert root["siblingsTotal"] == 0
    oldest = store.prompts.facts(store.issues.get(kids[0]["id"])).variables  # the issue itself is left out
    assert [s["id"] for s in oldest["siblings"]] == [k["id"] for k in kids][-ctxmod.FAMILY_LIMIT:]
    newest = store.prompts.facts(store.issues.get(kids[-1]["id"])).variables
    assert [s["id"] for s in newest["siblings"]] == [k["id"] for k in kids][-ctxmod.FAMILY_LIMIT - 1:-1]


def test_the_sibling_list_in_a_prompt_says_when_it_is_cut_short(store: RedisStore) -> None:
    parent = store.issues.create({"title": "parent", "type": "plan"})
    kids = children(store, parent["id"], ctxmod.FAMILY_LIMIT + 2)
    prompt, _ = store.prompts.render_for_dispatch(store.issues.get(kids[0]["id"]))
    assert prompt is not None
    assert f"(showing {ctxmod.FAMILY_LIMIT} of {ctxmod.FAMILY_LIMIT + 1}, the most recent)" in prompt
    assert "- #" + str(kids[1]["number"]) + " " not in prompt and f"child {ctxmod.FAMILY_LIMIT + 1}" in prompt
    store.issues.delete(kids[1]["id"])
    prompt, _ = store.prompts.render_for_dispatch(store.issues.get(kids[0]["id"]))
    assert prompt is not None and "showing" not in prompt and f"child {ctxmod.FAMILY_LIMIT + 1}" in prompt


def test_a_small_family_is_not_marked_as_cut_short(store: RedisStore) -> None:
    parent = store.issues.create({"title": "parent", "type": "plan"})
    kids = children(store, parent["id"], 3)
    v = store.prompts.facts(store.issues.get(kids[1]["id"])).variables
    assert [s["id"] for s in v["siblings"]] == [kids[0]["id"], kids[2]["id"]]
    assert v["siblingsTotal"] == 2 and v["siblingsTruncated"] is False


def _keys_read(lines: list[dict[str, Any]], prefix: str) -> set[str]:
    """Keys starting with ``prefix`` that scripts read (MONITOR lines)."""
    return {args[1] for args in (c["command"].split() for c in lines)
            if len(args) > 1 and args[1].startswith(prefix)}


def test_a_claim_reads_only_the_most_recent_sessions_of_an_issue_and_counts_the_rest(
        private_store: RedisStore) -> None:
    store = private_store
    me = store.issues.create({"title": "reopened often", "type": "task", "status": "todo"})
    for n in range(25):
        store.clock.advance(1)  # type: ignore[attr-defined]  # (a FrozenClock): claims in order
        claim = store.dispatch.claim(f"agent-{n}")
        assert claim is not None and claim.issue["id"] == me["id"]
        store.dispatch.release(claim.session_id, f"agent-{n}", None, f"attempt {n}")
    store.clock.advance(1)  # type: ignore[attr-defined]
    claim = store.dispatch.claim("agent-last")
    assert claim is not None
    facts: list[Any] = []
    lines = monitored(store.r, lambda: facts.append(
        store.prompts.facts(store.issues.get(me["id"]), {"sessionId": claim.session_id})))
    v = facts[0].variables
    assert [s["reason"] for s in v["previousSessions"]] == [f"attempt {n}" for n in range(15, 25)]
    assert v["previousSessionsTotal"] == 25 and v["previousSessionsTruncated"] is True
    assert v["hasFailedSessions"] is True and v["agentName"] == "agent-last"
    # The 10 shown plus the claim's own: not all 26 session hashes.
    assert len(_keys_read(lines, store.keys.session(""))) == ctxmod.SESSION_LIMIT + 1


def test_a_claim_reads_the_goals_of_its_project_not_every_live_goal(private_store: RedisStore) -> None:
    store = private_store
    project = store.projects.create({"name": "P"})
    for n in range(30):
        store.goals.create({"title": f"elsewhere {n}", "projectId": f"other-{n}"})
    store.goals.create({"title": "Old", "status": "achieved", "projectId": project["id"]})
    active = store.goals.create({"title": "Now", "projectId": project["id"]})
    me = store.issues.create({"title": "t", "type": "task", "projectId": project["id"]})
    facts: list[Any] = []
    lines = monitored(store.r, lambda: facts.append(store.prompts.facts(store.issues.get(me["id"]))))
    assert facts[0].variables["goal"]["id"] == active["id"]
    assert len(_keys_read(lines, store.keys.row("goal", ""))) == 2  # the project's two goals only
