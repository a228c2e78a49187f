"""The SDK against a live Loop (gunicorn + worker + real Redis): every resource, paging,
typed errors and idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from loop.client import (
    AuthError,
    ConflictError,
    ForbiddenError,
    LoopClient,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)
from tests.live_server import LiveServer, live_server_fixture

live = live_server_fixture()


@pytest.fixture
def loop(live: LiveServer) -> LoopClient:
    client: LoopClient = live.client()
    return client


def test_system_endpoints_answer_without_a_key(live: LiveServer) -> None:
    anon = LoopClient(live.url, "")
    assert anon.info()["name"] == "Loop API"
    assert anon.health()["ok"] is True
    assert anon.openapi()["openapi"].startswith("3.1")


def test_issue_lifecycle_create_get_update_delete(loop: LoopClient) -> None:
    issue = loop.issues.create("SDK lifecycle", "task", priority=2, description="d")
    assert issue["status"] == "triage" and issue["priority"] == 2
    got = loop.issues.get(issue["id"])
    assert got["title"] == "SDK lifecycle" and got["children"] == [] and got["labels"] == []
    updated = loop.issues.update(issue["id"], status="todo", description="changed", project_id=None)
    assert updated["status"] == "todo" and updated["description"] == "changed"
    done = loop.issues.complete(issue["id"], "All good", commits=[{"sha": "abc", "message": "fix"}])
    assert done["status"] == "done" and done["agentSummary"] == "All good" and done["completedAt"]
    loop.issues.delete(issue["id"])
    with pytest.raises(NotFoundError, match="Issue not found"):
        loop.issues.get(issue["id"])


def test_list_returns_a_page_with_the_total_and_iter_pages_through_everything(loop: LoopClient) -> None:
    project = loop.projects.create("Paging project")
    made = [loop.issues.create(f"page {i}", "task", project_id=project["id"])["id"] for i in range(7)]
    page = loop.issues.list(3, 0, project_id=project["id"])
    assert page.total == 7 and [r["id"] for r in page] == made[:3]
    calls: list[Any] = []
    original = loop.transport.request

    def spy(*a: Any, **kw: Any) -> Any:
        calls.append(kw.get("query"))
        return original(*a, **kw)

    loop.transport.request = spy  # type: ignore[method-assign]
    assert [r["id"] for r in loop.issues.iter(page_size=3, project_id=project["id"])] == made
    assert [q["offset"] for q in calls] == [None, 3, 6]


def test_filters_narrow_the_list(loop: LoopClient) -> None:
    project = loop.projects.create("Filter project")
    a = loop.issues.create("bug a", "task", status="todo", project_id=project["id"])
    loop.issues.create("plan b", "plan", status="backlog", project_id=project["id"])
    page = loop.issues.list(project_id=project["id"], status=["todo"], type="task")
    assert [r["id"] for r in page] == [a["id"]]


def test_a_schema_failure_raises_validation_error_with_field_details(loop: LoopClient) -> None:
    with pytest.raises(ValidationError) as info:
        loop.issues.create("", "nonsense")
    assert info.value.status == 400
    assert set(info.value.details) >= {"title", "type"}


def test_a_broken_rule_raises_unprocessable_with_the_server_message(loop: LoopClient) -> None:
    with pytest.raises(UnprocessableError, match="Parent issue not found"):
        loop.issues.create("orphan", "task", parent_id="does-not-exist")


def test_a_wrong_key_raises_auth_error(live: LiveServer) -> None:
    with pytest.raises(AuthError, match="Invalid API key"):
        LoopClient(live.url, "wrong", max_retries=0).issues.list()


def test_a_repeated_idempotency_key_creates_the_issue_once(loop: LoopClient) -> None:
    project = loop.projects.create("Idem project")
    first = loop.issues.create("once", "task", project_id=project["id"], idempotency_key="sdk-idem-1")
    again = loop.issues.create("once", "task", project_id=project["id"], idempotency_key="sdk-idem-1")
    assert first["id"] == again["id"]
    assert loop.issues.list(project_id=project["id"]).total == 1


def test_labels_create_attach_detach_and_duplicate_conflict(loop: LoopClient) -> None:
    label = loop.labels.create("sdk-bug", "#ff0000")
    with pytest.raises(ConflictError, match="Label name already exists"):
        loop.labels.create("sdk-bug", "#00ff00")
    issue = loop.issues.create("labelled", "task")
    loop.issues.add_label(issue["id"], label["id"])
    assert [lb["name"] for lb in loop.issues.get(issue["id"])["labels"]] == ["sdk-bug"]
    assert [r["id"] for r in loop.issues.list(label_id=label["id"])] == [issue["id"]]
    loop.issues.remove_label(issue["id"], label["id"])
    assert loop.issues.get(issue["id"])["labels"] == []
    assert (loop.labels.find("sdk-bug") or {}).get("id") == label["id"]
    loop.labels.delete(label["id"])
    assert loop.labels.find("sdk-bug") is None


def test_relations_and_comments(loop: LoopClient) -> None:
    a = loop.issues.create("blocker", "task")
    b = loop.issues.create("blocked", "task")
    rel = loop.relations.create(a["id"], "blocks", b["id"])
    assert rel["type"] == "blocks" and rel["relatedIssueId"] == b["id"]
    assert loop.issues.get(a["id"])["relations"][0]["id"] == rel["id"]
    loop.relations.delete(rel["id"])
    with pytest.raises(NotFoundError):
        loop.relations.delete(rel["id"])
    top = loop.comments.create(a["id"], "Working on it", author_name="agent-1", author_type="agent")
    loop.issues.comment(a["id"], "thanks", author_name="ana", author_type="human", parent_id=top["id"])
    thread = loop.comments.list(a["id"])
    assert thread[0]["body"] == "Working on it" and thread[0]["replies"][0]["body"] == "thanks"


def test_projects_and_goals_crud(loop: LoopClient) -> None:
    goal = loop.goals.create("Ship v1", target_value=10, current_value=2, unit="features")
    project = loop.projects.create("SDK project", goal_id=goal["id"], status="active")
    detail = loop.projects.get(project["id"])
    assert detail["goal"]["id"] == goal["id"] and detail["issueCounts"] == {}
    assert loop.projects.update(project["id"], health="at_risk")["health"] == "at_risk"
    assert loop.goals.update(goal["id"], current_value=5, unit=None)["currentValue"] == 5
    assert goal["id"] in [g["id"] for g in loop.goals.iter()]
    loop.projects.delete(project["id"])
    loop.goals.delete(goal["id"])
    with pytest.raises(NotFoundError, match="Goal not found"):
        loop.goals.get(goal["id"])


def test_named_keys_are_created_used_and_revoked(live: LiveServer, loop: LoopClient) -> None:
    created = loop.keys.create("sdk-agent")
    assert created["key"] and created["name"] == "sdk-agent"
    assert "sdk-agent" in [k["name"] for k in loop.keys.list()]
    agent = LoopClient(live.url, created["key"], max_retries=0)
    assert agent.issues.list().total >= 0
    with pytest.raises(ForbiddenError):
        agent.keys.list()
    loop.keys.revoke("sdk-agent")
    with pytest.raises(AuthError):
        agent.issues.list()


# ------------------------------------------------------------------- dispatch
def _todo(loop: LoopClient, title: str, **kw: Any) -> dict[str, Any]:
    project = loop.projects.create(f"proj {title}")
    return loop.issues.create(title, "task", status="todo", project_id=project["id"], **kw)


def test_next_claims_with_a_lease_and_heartbeat_release_and_sessions_work(loop: LoopClient) -> None:
    issue = _todo(loop, "claim me", priority=1)
    task = loop.dispatch.next(issue["projectId"])
    assert task is not None and task["issue"]["id"] == issue["id"] and task["issue"]["status"] == "in_progress"
    claim = task["claim"]
    assert set(claim) >= {"sessionId", "token", "expiresAt"}
    assert loop.dispatch.next(issue["projectId"]) is None  # nothing else eligible in that project
    beat = loop.dispatch.heartbeat(claim["sessionId"], claim["token"])
    assert beat["status"] == "active" and beat["expiresAt"] >= claim["expiresAt"]
    released = loop.dispatch.release(claim["sessionId"], claim["token"], "tests give it back")
    assert released["status"] == "released" and released["reason"] == "tests give it back"
    assert loop.issues.get(issue["id"])["status"] == "todo"
    sessions = loop.issues.sessions(issue["id"])
    assert sessions.total == 1 and sessions.data[0]["id"] == claim["sessionId"]
    assert loop.dispatch.session(claim["sessionId"])["status"] == "released"


def test_release_with_failed_closes_the_session_as_failed_and_parks_at_the_last_strike(loop: LoopClient) -> None:
    issue = _todo(loop, "fails every time")
    strikes = 3  # LOOP_MAX_LEASE_EXPIRIES default (the live server does not set it)
    for n in range(strikes):
        task = loop.dispatch.next(issue["projectId"])
        assert task is not None and task["issue"]["id"] == issue["id"]
        row = loop.dispatch.release(task["claim"]["sessionId"], task["claim"]["token"], f"boom {n}", failed=True)
        assert row["status"] == "failed" and row["reason"] == f"boom {n}"
    parked = loop.issues.get(issue["id"])
    assert parked["status"] == "backlog" and "needs-human-review" in [lb["name"] for lb in parked["labels"]]
    assert loop.dispatch.next(issue["projectId"]) is None


def test_a_stale_claim_token_is_a_conflict(loop: LoopClient) -> None:
    issue = _todo(loop, "stale")
    task = loop.dispatch.next(issue["projectId"])
    assert task is not None
    claim = task["claim"]
    with pytest.raises(ConflictError):
        loop.dispatch.heartbeat(claim["sessionId"], "claim_wrong")
    loop.dispatch.release(claim["sessionId"], claim["token"])
    with pytest.raises(ConflictError):
        loop.dispatch.release(claim["sessionId"], claim["token"])


def test_completing_with_the_claim_token_closes_the_session_with_the_summary(loop: LoopClient) -> None:
    issue = _todo(loop, "complete me")
    task = loop.dispatch.next(issue["projectId"])
    assert task is not None
    done = loop.issues.complete(issue["id"], "did it", claim_token=task["claim"]["token"])
    assert done["status"] == "done" and done["agentSummary"] == "did it"
    session = loop.dispatch.session(task["claim"]["sessionId"])
    assert session["status"] == "completed" and session["summary"] == "did it"


def test_the_queue_pages_globally_by_score(loop: LoopClient) -> None:
    project = loop.projects.create("queue paging")
    for p in (4, 1, 3, 2, 0):
        loop.issues.create(f"q{p}", "task", status="todo", priority=p, project_id=project["id"])
    first = loop.dispatch.queue(2, 0, project_id=project["id"])
    assert first.total == 5 and len(first) == 2
    items = list(loop.dispatch.iter_queue(page_size=2, project_id=project["id"]))
    scores = [i["score"] for i in items]
    assert len(items) == 5 and scores == sorted(scores, reverse=True)
    assert set(items[0]["breakdown"]) == {"priorityWeight", "goalBonus", "ageBonus", "typeBonus"}


# ------------------------------------------------------------ signals/prompts
def test_signals_ingest_list_filter_and_get(loop: LoopClient) -> None:
    project = loop.projects.create("signals project")
    made = loop.signals.ingest("sdk-sentry", "error", "critical", {"message": "Checkout 500s"},
                               source_id="evt-1", project_id=project["id"])
    signal, issue = made["signal"], made["issue"]
    assert issue["title"] == "[sdk-sentry] error: Checkout 500s" and issue["priority"] == 1
    assert signal["issueId"] == issue["id"] and signal["sourceId"] == "evt-1"
    loop.signals.ingest("sdk-sentry", "error", "low", {"message": "minor"}, project_id=project["id"])
    page = loop.signals.list(project_id=project["id"], severity="critical")
    assert page.total == 1 and page.data[0]["id"] == signal["id"]
    assert len(list(loop.signals.iter(page_size=1, project_id=project["id"]))) == 2
    assert loop.signals.get(signal["id"])["payload"] == {"message": "Checkout 500s"}
    with pytest.raises(NotFoundError):
        loop.signals.get("missing")
    with pytest.raises(ValidationError):
        loop.signals.ingest("s", "t", "apocalyptic")


def test_signals_with_a_fingerprint_group_and_lists_show_the_group_count(loop: LoopClient) -> None:
    project = loop.projects.create("grouping project")
    made = [loop.signals.ingest("sdk-sentry", "error", sev, {"message": "Same crash"}, project_id=project["id"],
                                fingerprint="sdk-crash-1") for sev in ("low", "high", "medium")]
    assert [m["grouped"] for m in made] == [False, True, True]
    issue = made[-1]["issue"]
    assert issue["id"] == made[0]["issue"]["id"] and issue["signalCount"] == 3 and issue["priority"] == 2
    page = loop.signals.list(project_id=project["id"])
    assert page.total == 3 and {r["groupCount"] for r in page.data} == {3}
    assert {r["fingerprint"] for r in page.data} == {"sdk-crash-1"}
    with pytest.raises(ValidationError):
        loop.signals.ingest("s", "t", "low", {}, fingerprint="")


def test_goal_readings_record_list_and_iterate(loop: LoopClient) -> None:
    goal = loop.goals.create("SDK latency", metric="p95_ms", target_value=200, direction="decrease")
    for day, value in ((1, 350.0), (3, 180.0), (2, 250.0)):
        after = loop.goals.record(goal["id"], value, at=f"2025-03-0{day}T12:00:00Z", source="sdk")
    assert (after["currentValue"], after["status"]) == (180, "achieved")  # the latest by `at`, not by arrival
    page = loop.goals.readings(goal["id"], limit=2)
    assert page.total == 3 and [r["value"] for r in page.data] == [180, 250]
    assert [r["value"] for r in loop.goals.iter_readings(goal["id"], page_size=1)] == [180, 250, 350]
    with pytest.raises(ValidationError):
        loop.goals.record(goal["id"], 1, at="yesterday")
    with pytest.raises(NotFoundError):
        loop.goals.readings("missing")


def test_templates_versions_promote_reviews_and_preview(loop: LoopClient) -> None:
    seeded = {t["slug"] for t in loop.templates.iter()}
    assert {"task-execution", "signal-triage"} <= seeded
    tpl = loop.templates.create("sdk-bugfix", "SDK bugfix", conditions={"type": "task", "labels": ["sdk-tpl-bug"]},
                                specificity=50)
    assert tpl["activeVersionId"] is None
    with pytest.raises(ConflictError, match="Template slug already exists"):
        loop.templates.create("sdk-bugfix", "again")
    v1 = loop.templates.create_version(tpl["id"], "Fix {{issue.title}} now.", changelog="first")
    v2 = loop.templates.create_version(tpl["id"], "Please fix {{issue.title}}.", author_type="agent",
                                       author_name="bot")
    assert (v1["status"], v2["status"]) == ("active", "draft")
    with pytest.raises(UnprocessableError, match="Triple-brace"):
        loop.templates.create_version(tpl["id"], "{{{raw}}}")
    assert [v["version"] for v in loop.templates.iter_versions(tpl["id"], page_size=1)] == [2, 1]
    promoted = loop.templates.promote(tpl["id"], v2["id"])
    assert promoted["status"] == "active"
    with pytest.raises(UnprocessableError, match="already active"):
        loop.templates.promote(tpl["id"], v2["id"])
    assert loop.templates.get(tpl["id"])["activeVersion"]["id"] == v2["id"]
    label = loop.labels.create("sdk-tpl-bug")
    issue = loop.issues.create("the parser", "task", label_ids=[label["id"]])
    preview = loop.templates.preview(issue["id"])
    assert preview["template"]["slug"] == "sdk-bugfix" and preview["prompt"] == "Please fix the parser."
    review = loop.reviews.create(v2["id"], issue["id"], 4, 5, 3, feedback="ok", author_type="human")
    assert review["versionId"] == v2["id"]
    assert loop.templates.reviews(tpl["id"]).data[0]["id"] == review["id"]
    assert [r["id"] for r in loop.templates.iter_reviews(tpl["id"])] == [review["id"]]
    assert loop.templates.update(tpl["id"], specificity=60)["specificity"] == 60
    loop.templates.delete(tpl["id"])
    with pytest.raises(NotFoundError, match="Template not found"):
        loop.templates.get(tpl["id"])


def test_dashboard_stats_activity_and_prompts(loop: LoopClient) -> None:
    loop.issues.create("dashboard issue", "task", status="todo")
    stats = loop.dashboard.stats()
    assert stats["issues"]["total"] >= 1 and stats["issues"]["byStatus"]["todo"] >= 1
    assert set(stats["dispatch"]) == {"queueDepth", "activeCount", "completedLast24h"}
    activity = loop.dashboard.activity(5)
    assert 1 <= len(activity) <= 5 and "latestActivity" in activity.data[0]
    prompts = loop.dashboard.prompts()
    assert {"template", "activeVersion", "reviewSummary", "needsAttention"} <= set(prompts[0])


def test_signed_webhooks_are_queued_deduplicated_and_become_signals(loop: LoopClient) -> None:
    import time

    payload = {"action": "opened", "issue": {"number": 7, "title": "SDK webhook"},
               "repository": {"full_name": "acme/sdk"}, "sender": {"login": "octocat"}}
    first = loop.webhooks.github(payload, "gh-secret", event="issues", delivery_id="sdk-delivery-1")
    assert first == {"deliveryId": "sdk-delivery-1", "status": "queued"}
    again = loop.webhooks.github(payload, "gh-secret", event="issues", delivery_id="sdk-delivery-1")
    assert again["status"] == "duplicate"
    with pytest.raises(AuthError, match="Invalid webhook signature"):
        loop.webhooks.github(payload, "wrong-secret", event="issues")
    assert loop.webhooks.posthog({"event": {"name": "sdk_rate"}, "value": 60}, "posthog-secret")["status"] in (
        "queued", "duplicate")
    sentry = loop.webhooks.sentry({"action": "created", "data": {"issue": {"id": "s1", "title": "SDK boom"}}},
                                  "sentry-secret")
    assert sentry["status"] == "queued"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and loop.signals.list(source="github").total < 1:
        time.sleep(0.2)
    (signal,) = loop.signals.list(source="github").data
    assert signal["payload"]["issue"]["title"] == "SDK webhook"
