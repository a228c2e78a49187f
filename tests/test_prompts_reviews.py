"""``POST /api/prompt-reviews`` (contract 6.5): EWMA scores, the improvement loop and its
de-duplication per template id (improvement 13), and the dashboard's prompt view."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from loop.prompts import reviews as reviews_module
from loop.prompts.fields import VERSION
from loop.prompts.templates import outcome_rates
from loop.store import RedisStore
from tests.conftest import Client, keys_of


def template_with_version(client: Client, slug: str = "reviewed") -> tuple[dict[str, Any], dict[str, Any]]:
    t = client.post("/api/templates", json={"slug": slug, "name": slug.title()}).json["data"]
    v = client.post(f"/api/templates/{t['id']}/versions",
                    json={"content": "Do {{issue.title}}", "authorType": "human", "authorName": "h"}).json["data"]
    return t, v


def review(client: Client, version_id: str, c: int, m: int | None = None, r: int | None = None,
           feedback: str | None = None) -> Any:
    body: dict[str, Any] = {"versionId": version_id, "issueId": "issue-1", "clarity": c,
                            "completeness": c if m is None else m, "relevance": c if r is None else r,
                            "authorType": "agent"}
    if feedback is not None:
        body["feedback"] = feedback
    return client.post("/api/prompt-reviews", json=body)


def score(client: Client, template_id: str, version_id: str) -> float | None:
    versions = client.get(f"/api/templates/{template_id}/versions").json["data"]
    return next(v["reviewScore"] for v in versions if v["id"] == version_id)  # type: ignore[no-any-return]


def improvement_issues(client: Client) -> list[dict[str, Any]]:
    issues = client.get("/api/issues?limit=200").json["data"]
    return [i for i in issues if i["title"].startswith("Improve prompt template: ")]


# ---------------------------------------------------------------------------- the review itself
def test_a_review_is_stored_and_returned(client: Client) -> None:
    _, v = template_with_version(client)
    r = review(client, v["id"], 4, 5, 3, feedback="Clear <enough> & short")
    assert r.status_code == 201
    d = r.json["data"]
    assert {k: d[k] for k in ("versionId", "issueId", "clarity", "completeness", "relevance", "feedback",
                              "authorType")} == {
        "versionId": v["id"], "issueId": "issue-1", "clarity": 4, "completeness": 5, "relevance": 3,
        "feedback": "Clear <enough> & short", "authorType": "agent"}
    assert d["id"] and d["createdAt"].endswith("Z")


@pytest.mark.parametrize("body", [
    {}, {"versionId": "v", "issueId": "i", "clarity": 0, "completeness": 3, "relevance": 3, "authorType": "agent"},
    {"versionId": "v", "issueId": "i", "clarity": 6, "completeness": 3, "relevance": 3, "authorType": "agent"},
    {"versionId": "v", "issueId": "i", "clarity": 2.5, "completeness": 3, "relevance": 3, "authorType": "agent"},
    {"versionId": "v", "issueId": "i", "clarity": 3, "completeness": 3, "relevance": 3},
    {"versionId": "v", "issueId": "", "clarity": 3, "completeness": 3, "relevance": 3, "authorType": "agent"},
    {"versionId": "v", "issueId": "i", "clarity": "3", "completeness": 3, "relevance": 3, "authorType": "bot"},
])
def test_invalid_reviews_are_400_and_write_nothing(client: Client, store: RedisStore, body: dict[str, Any]) -> None:
    before = keys_of(store)
    r = client.post("/api/prompt-reviews", json=body)
    assert r.status_code == 400 and r.json["error"]
    assert keys_of(store) == before


def test_a_review_of_an_unknown_version_is_404(client: Client, store: RedisStore) -> None:
    before = keys_of(store)
    for vid in ("nope", "a:b"):
        assert review(client, vid, 3).json == {"error": "Version not found"}
    assert keys_of(store) == before


# ---------------------------------------------------------------------------- EWMA
@pytest.mark.parametrize(("first", "then", "after_first", "after_then"), [
    ((3, 3, 3), (5, 5, 5), 3.0, 3.6),
    ((4, 5, 3), (2, 2, 2), 4.0, 3.4),
])
def test_review_scores_are_an_ewma_with_alpha_0_3(client: Client, first: tuple[int, int, int],
                                                  then: tuple[int, int, int], after_first: float,
                                                  after_then: float) -> None:
    t, v = template_with_version(client)
    assert score(client, t["id"], v["id"]) is None
    review(client, v["id"], *first)
    assert score(client, t["id"], v["id"]) == pytest.approx(after_first)
    review(client, v["id"], *then)
    assert score(client, t["id"], v["id"]) == pytest.approx(after_then)


def test_a_review_commits_although_a_dispatch_counts_usage_during_every_attempt(
        store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    t = store.prompts.templates.create({"slug": "hot", "name": "Hot"})
    v = store.prompts.versions.create(t["id"], {"content": "x", "authorType": "human", "authorName": "h"})
    real_ewma = reviews_module.ewma
    raced: list[int] = []

    def ewma_while_dispatching(previous: float | None, value: float) -> float:
        # Runs between the transaction's reads and its EXEC: a dispatch of the version lands there.
        store.r.hincrby(store.keys.row(VERSION, v["id"]), "usageCount", 1)
        raced.append(1)
        return real_ewma(previous, value)

    monkeypatch.setattr(reviews_module, "ewma", ewma_while_dispatching)
    store.prompts.reviews.create({"versionId": v["id"], "issueId": "i", "authorType": "agent",
                                  "clarity": 2, "completeness": 2, "relevance": 2})
    monkeypatch.undo()
    version = store.prompts.versions.get(v["id"])
    assert raced and version["usageCount"] == len(raced)
    assert version["reviewScore"] == pytest.approx(2)


@pytest.mark.slow
def test_concurrent_reviews_never_lose_an_update(store: RedisStore) -> None:
    t = store.prompts.templates.create({"slug": "busy", "name": "Busy"})
    v = store.prompts.versions.create(t["id"], {"content": "x", "authorType": "human", "authorName": "h"})
    body = {"versionId": v["id"], "issueId": "i", "authorType": "agent", "feedback": "ok"}
    store.prompts.reviews.create({**body, "clarity": 5, "completeness": 5, "relevance": 5})
    n = 12
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            store.prompts.reviews.create({**body, "clarity": 1, "completeness": 1, "relevance": 1})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    # Sequentially: 5, then n times x -> 0.3 * 1 + 0.7 * x. A lost update leaves it higher.
    assert store.prompts.versions.get(v["id"])["reviewScore"] == pytest.approx(1 + 4 * 0.7 ** n)
    assert store.prompts.reviews.summary(t["id"])["totalReviews"] == n + 1


# ---------------------------------------------------------------------------- improvement loop
def test_three_poor_reviews_file_one_improvement_task(client: Client) -> None:
    t, v = template_with_version(client, "checkout-fix")
    review(client, v["id"], 2, feedback="Too vague about <what> to test")
    review(client, v["id"], 3)
    assert improvement_issues(client) == []
    review(client, v["id"], 2, 3, 2, feedback="Missing the API for relations & comments")
    [issue] = improvement_issues(client)
    assert issue["title"] == "Improve prompt template: checkout-fix (avg review 2.3/5, 3 reviews since v1)"
    assert (issue["type"], issue["status"], issue["priority"], issue["projectId"], issue["parentId"]) == (
        "task", "todo", 3, None, None)
    detail = client.get(f"/api/issues/{issue['id']}").json["data"]
    assert sorted((lb["name"], lb["color"]) for lb in detail["labels"]) == [
        ("meta", "#6b7280"), ("prompt-improvement", "#f59e0b")]
    description = detail["description"]
    for expected in ("Checkout-Fix", "`checkout-fix`", t["id"], v["id"], "v1", "2.31 / 5",
                     "> Too vague about <what> to test", "> Missing the API for relations & comments",
                     f"/api/templates/{t['id']}/versions"):
        assert expected in description


def test_a_score_of_exactly_3_5_is_not_poor(client: Client) -> None:
    _, v = template_with_version(client)
    for _ in range(3):
        review(client, v["id"], 4, 3, 4)  # composite 3.67 -> EWMA stays above 3.5
    review(client, v["id"], 3, 4, 3)  # 0.3 * 3.33 + 0.7 * 3.67 = 3.57
    assert improvement_issues(client) == []


def test_fifteen_reviews_file_a_task_even_when_the_score_is_good(client: Client) -> None:
    _, v = template_with_version(client)
    for _ in range(14):
        review(client, v["id"], 5)
    assert improvement_issues(client) == []
    review(client, v["id"], 5)
    [issue] = improvement_issues(client)
    assert "(avg review 5.0/5, 15 reviews since v1)" in issue["title"]


def test_only_one_improvement_task_is_open_per_template(client: Client) -> None:
    t, v1 = template_with_version(client)
    for _ in range(5):
        review(client, v1["id"], 1)
    assert len(improvement_issues(client)) == 1
    # Still one after a new version is promoted and also reviewed poorly: dedup is per template.
    v2 = client.post(f"/api/templates/{t['id']}/versions",
                     json={"content": "v2", "authorType": "agent", "authorName": "a"}).json["data"]
    client.post(f"/api/templates/{t['id']}/versions/{v2['id']}/promote")
    for _ in range(3):
        review(client, v2["id"], 1)
    assert len(improvement_issues(client)) == 1


@pytest.mark.parametrize("close", ["done", "canceled", "deleted"])
def test_a_new_task_is_filed_once_the_previous_one_is_closed(client: Client, close: str) -> None:
    _, v = template_with_version(client)
    for _ in range(3):
        review(client, v["id"], 1)
    [first] = improvement_issues(client)
    if close == "deleted":
        client.delete(f"/api/issues/{first['id']}")
    else:
        client.patch(f"/api/issues/{first['id']}", json={"status": close})
    review(client, v["id"], 1)
    open_ones = [i for i in improvement_issues(client) if i["status"] == "todo"]
    assert len(open_ones) == 1 and open_ones[0]["id"] != first["id"]


def test_renaming_the_issue_does_not_defeat_the_dedup(client: Client) -> None:
    _, v = template_with_version(client)
    for _ in range(3):
        review(client, v["id"], 1)
    [first] = improvement_issues(client)
    client.patch(f"/api/issues/{first['id']}", json={"title": "Rewrite the reviewed prompt"})
    review(client, v["id"], 1)
    assert improvement_issues(client) == []
    assert client.get("/api/issues").json["total"] == 1


def test_a_deleted_template_gets_no_improvement_task(client: Client) -> None:
    t, v = template_with_version(client)
    client.delete(f"/api/templates/{t['id']}")
    for _ in range(3):
        assert review(client, v["id"], 1).status_code == 201
    assert improvement_issues(client) == []


def test_slugs_that_share_a_prefix_get_their_own_tasks(client: Client) -> None:
    _, short = template_with_version(client, "deploy")
    _, long = template_with_version(client, "deploy-check")
    for _ in range(3):
        review(client, short["id"], 1)
        review(client, long["id"], 1)
    titles = sorted(i["title"].split(" (")[0] for i in improvement_issues(client))
    assert titles == ["Improve prompt template: deploy", "Improve prompt template: deploy-check"]


@pytest.mark.slow
def test_concurrent_poor_reviews_file_exactly_one_task(store: RedisStore) -> None:
    t = store.prompts.templates.create({"slug": "racy", "name": "Racy"})
    v = store.prompts.versions.create(t["id"], {"content": "x", "authorType": "human", "authorName": "h"})
    body = {"versionId": v["id"], "issueId": "i", "authorType": "agent", "clarity": 1, "completeness": 1,
            "relevance": 1}
    for _ in range(2):
        store.prompts.reviews.create(body)
    barrier = threading.Barrier(10)

    def one() -> None:
        barrier.wait()
        store.prompts.reviews.create(body)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rows, total = store.issues.list({}, 50, 0)
    assert total == 1 and rows[0]["title"].startswith("Improve prompt template: racy")


# ---------------------------------------------------------------------------- outcomes and dashboard
def test_completion_rate_and_duration_come_from_the_versions_sessions() -> None:
    assert outcome_rates({"dispatched": 0}) == (None, None)
    assert outcome_rates({"dispatched": 5, "completed": 3, "failed": 1, "expired": 0, "released": 0,
                          "completedDurationMsSum": 9000}) == (0.75, 3000.0)
    assert outcome_rates({"dispatched": 2, "completed": 0, "failed": 0, "expired": 1, "released": 1,
                          "completedDurationMsSum": 0}) == (0.0, None)


def test_versions_show_rates_from_dispatch_stats(client: Client, store: RedisStore,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    t, v = template_with_version(client)
    stats = {"dispatched": 4, "completed": 1, "failed": 1, "expired": 1, "released": 0, "completedDurationMsSum": 1500}
    store.r.hset(store.keys.dispatch_version(v["id"]), mapping=stats)  # dispatch's per-version counters
    [wire] = client.get(f"/api/templates/{t['id']}/versions").json["data"]
    assert wire["completionRate"] == pytest.approx(1 / 3) and wire["avgDurationMs"] == 1500.0
    entry = next(e for e in client.get("/api/dashboard/prompts").json["data"] if e["template"]["id"] == t["id"])
    assert entry["needsAttention"] is True  # completion rate below 0.5


def test_the_dashboard_lists_every_template_with_its_review_summary(client: Client) -> None:
    t, v1 = template_with_version(client)
    for i in range(6):
        client.post(f"/api/templates/{t['id']}/versions",
                    json={"content": f"v{i + 2}", "authorType": "agent", "authorName": "a"})
    review(client, v1["id"], 2, 3, 4)
    review(client, v1["id"], 4, 3, 2)
    r = client.get("/api/dashboard/prompts")
    assert r.status_code == 200 and "total" not in r.json
    entries = {e["template"]["slug"]: e for e in r.json["data"]}
    assert set(entries) == {"signal-triage", "hypothesis-planning", "task-execution", "plan-decomposition",
                            "monitor-check", "reviewed"}
    e = entries["reviewed"]
    assert [v["version"] for v in e["recentVersions"]] == [7, 6, 5, 4, 3]
    # v1 is still active though older than the five newest (the reference would report null).
    assert e["activeVersion"]["id"] == v1["id"]
    assert e["reviewSummary"] == {"totalReviews": 2, "avgClarity": 3.0, "avgCompleteness": 3.0, "avgRelevance": 3.0,
                                  "compositeScore": 3.0}
    assert e["needsAttention"] is False
    seeded = entries["task-execution"]
    assert seeded["activeVersion"]["id"] == "ver_default_task_execution_v1"
    assert seeded["reviewSummary"] == {"totalReviews": 0, "avgClarity": None, "avgCompleteness": None,
                                       "avgRelevance": None, "compositeScore": None}


def test_the_dashboard_flags_templates_scoring_below_three(client: Client) -> None:
    t, v = template_with_version(client)
    review(client, v["id"], 2)
    entry = next(e for e in client.get("/api/dashboard/prompts").json["data"] if e["template"]["id"] == t["id"])
    assert entry["reviewSummary"]["compositeScore"] == 2.0 and entry["needsAttention"] is True
