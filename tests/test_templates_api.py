"""``/api/templates`` (contract 1.10): CRUD, strict conditions, slugs, versions, promote, reviews."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from loop.prompts.fields import TRIPLE_BRACE_MESSAGE
from loop.store import RedisStore
from tests.conftest import Client, keys_of

SEEDED = ["signal-triage", "hypothesis-planning", "task-execution", "plan-decomposition", "monitor-check"]


def make_template(client: Client, **body: Any) -> dict[str, Any]:
    r = client.post("/api/templates", json={"slug": "custom", "name": "Custom", **body})
    assert r.status_code == 201, r.json
    return dict(r.json["data"])


def add_version(client: Client, template_id: str, content: str = "Hello {{issue.title}}") -> Any:
    return client.post(f"/api/templates/{template_id}/versions",
                       json={"content": content, "authorType": "human", "authorName": "Ada"})


# ---------------------------------------------------------------------------- templates
def test_a_fresh_store_lists_the_five_seeded_templates_in_creation_order(client: Client) -> None:
    r = client.get("/api/templates")
    assert r.status_code == 200
    assert r.json["total"] == 5
    assert [t["slug"] for t in r.json["data"]] == SEEDED
    first = r.json["data"][0]
    assert first["id"] == "tpl_default_signal_triage"
    assert first["activeVersionId"] == "ver_default_signal_triage_v1"
    assert first["conditions"] == {"type": "signal"} and first["specificity"] == 10 and first["projectId"] is None


def test_seeded_versions_are_active_v1_by_system(client: Client) -> None:
    r = client.get("/api/templates/tpl_default_task_execution")
    v = r.json["data"]["activeVersion"]
    assert (v["id"], v["version"], v["status"], v["authorType"], v["authorName"], v["changelog"], v["usageCount"]) == (
        "ver_default_task_execution_v1", 1, "active", "human", "system", "Initial default template", 0)


def test_seeding_twice_writes_nothing_new(store: RedisStore) -> None:
    from loop.prompts import seeds

    store.prompts.ensure_seeded()
    before = {k: store.r.type(k) for k in keys_of(store)}
    store.r.delete(store.keys.prompts_seeded())  # force the slow path
    assert seeds.seed(store) == 0
    assert store.prompts.templates.list(50, 0)[1] == 5
    assert set(before) == keys_of(store)


def test_a_deleted_default_is_not_resurrected_by_seeding(client: Client, store: RedisStore) -> None:
    from loop.prompts import seeds

    assert client.delete("/api/templates/tpl_default_monitor_check").status_code == 204
    store.r.delete(store.keys.prompts_seeded())
    seeds.seed(store)
    assert "monitor-check" not in [t["slug"] for t in client.get("/api/templates").json["data"]]


def test_create_returns_the_template_without_a_version(client: Client) -> None:
    t = make_template(client, description="d", conditions={"type": "task", "labels": ["backend"]}, specificity=40,
                      projectId="proj1")
    assert t["activeVersionId"] is None and t["deletedAt"] is None
    assert (t["slug"], t["name"], t["description"], t["conditions"], t["specificity"], t["projectId"]) == (
        "custom", "Custom", "d", {"type": "task", "labels": ["backend"]}, 40, "proj1")
    assert client.get(f"/api/templates/{t['id']}").json["data"]["activeVersion"] is None


def test_conditions_and_specificity_default_to_empty_and_ten(client: Client) -> None:
    t = make_template(client)
    assert t["conditions"] == {} and t["specificity"] == 10


@pytest.mark.parametrize("slug", ["Upper", "with space", "double--hyphen", "-lead", "trail-", "under_score", "", "x" * 201])
def test_slugs_must_be_lowercase_kebab_case(client: Client, store: RedisStore, slug: str) -> None:
    client.get("/api/templates")  # seed first, so "nothing written" compares like with like
    before = keys_of(store)
    r = client.post("/api/templates", json={"slug": slug, "name": "N"})
    assert r.status_code == 400 and "slug" in r.json["details"]
    assert keys_of(store) == before


@pytest.mark.parametrize("conditions", [
    {"unknown": 1}, {"type": "bug"}, {"labels": "x"}, {"hasFailedSessions": "yes"},
    {"hypothesisConfidence": 1.5}, {"projectId": 3}, [], "task",
])
def test_conditions_are_strict(client: Client, conditions: Any) -> None:
    r = client.post("/api/templates", json={"slug": "s", "name": "N", "conditions": conditions})
    assert r.status_code == 400
    assert any(k.startswith("conditions") for k in r.json["details"])


def test_a_slug_is_unique_even_after_the_template_is_deleted(client: Client) -> None:
    t = make_template(client)
    assert client.post("/api/templates", json={"slug": "custom", "name": "Again"}).json == {
        "error": "Template slug already exists"}
    client.delete(f"/api/templates/{t['id']}")
    r = client.post("/api/templates", json={"slug": "custom", "name": "Again"})
    assert r.status_code == 409
    assert client.post("/api/templates", json={"slug": "signal-triage", "name": "X"}).status_code == 409


def test_patch_updates_fields_but_never_the_slug(client: Client) -> None:
    t = make_template(client)
    r = client.patch(f"/api/templates/{t['id']}", json={"name": "Renamed", "slug": "other", "specificity": 0,
                                                        "conditions": {"signalSource": "sentry"}, "projectId": None})
    assert r.status_code == 200
    d = r.json["data"]
    assert (d["name"], d["slug"], d["specificity"], d["conditions"]) == ("Renamed", "custom", 0, {"signalSource": "sentry"})


def test_patch_validates_strictly_and_needs_a_field(client: Client) -> None:
    t = make_template(client)
    assert client.patch(f"/api/templates/{t['id']}", json={}).status_code == 400
    assert client.patch(f"/api/templates/{t['id']}", json={"conditions": {"x": 1}}).status_code == 400
    assert client.patch(f"/api/templates/{t['id']}", json={"specificity": 101}).status_code == 400
    assert client.patch("/api/templates/nope", json={"name": "x"}).json == {"error": "Template not found"}


def test_delete_hides_the_template_and_a_second_delete_is_404(client: Client) -> None:
    t = make_template(client)
    assert client.delete(f"/api/templates/{t['id']}").status_code == 204
    assert client.get(f"/api/templates/{t['id']}").status_code == 404
    assert client.delete(f"/api/templates/{t['id']}").status_code == 404
    assert client.get("/api/templates").json["total"] == 5


def test_list_pages_with_limit_and_offset(client: Client) -> None:
    make_template(client)
    r = client.get("/api/templates?limit=2&offset=4")
    assert r.json["total"] == 6 and [t["slug"] for t in r.json["data"]] == ["monitor-check", "custom"]
    assert client.get("/api/templates?limit=0").status_code == 400


def test_unknown_and_malformed_ids_are_404(client: Client) -> None:
    for path in ("/api/templates/nope", "/api/templates/a:b", "/api/templates/nope/versions",
                 "/api/templates/nope/reviews"):
        assert client.get(path).status_code == 404, path


# ---------------------------------------------------------------------------- versions
def test_the_first_version_becomes_active_and_later_ones_are_drafts(client: Client) -> None:
    t = make_template(client)
    v1 = add_version(client, t["id"]).json["data"]
    v2 = add_version(client, t["id"], "Second {{issue.id}}").json["data"]
    assert (v1["version"], v1["status"], v2["version"], v2["status"]) == (1, "active", 2, "draft")
    assert v1["usageCount"] == 0 and v1["reviewScore"] is None and v1["completionRate"] is None
    detail = client.get(f"/api/templates/{t['id']}").json["data"]
    assert detail["activeVersionId"] == v1["id"] and detail["activeVersion"]["id"] == v1["id"]


def test_versions_list_newest_first_and_page(client: Client) -> None:
    t = make_template(client)
    for i in range(3):
        add_version(client, t["id"], f"v{i} {{{{issue.title}}}}")
    r = client.get(f"/api/templates/{t['id']}/versions?limit=2&offset=1")
    assert r.json["total"] == 3 and [v["version"] for v in r.json["data"]] == [2, 1]


def test_version_body_is_validated(client: Client) -> None:
    t = make_template(client)
    for body in ({}, {"content": "", "authorType": "human", "authorName": "a"},
                 {"content": "x", "authorType": "robot", "authorName": "a"},
                 {"content": "x", "authorType": "human", "authorName": ""}):
        assert client.post(f"/api/templates/{t['id']}/versions", json=body).status_code == 400


def test_a_version_for_a_missing_template_is_404(client: Client) -> None:
    assert add_version(client, "nope").json == {"error": "Template not found"}


def test_triple_braces_are_a_422_with_the_reference_message(client: Client, store: RedisStore) -> None:
    t = make_template(client)
    before = keys_of(store)
    r = add_version(client, t["id"], "Hi {{{issue.title}}}")
    assert r.status_code == 422 and r.json == {"error": TRIPLE_BRACE_MESSAGE}
    assert keys_of(store) == before


@pytest.mark.parametrize(("content", "fragment"), [
    ("{{> missing_partial}}", "unknown partial 'missing_partial'"),
    ("{{shout issue.title}}", "unknown helper 'shout'"),
    ("{{#if issue.title}}unclosed", "does not compile"),
])
def test_content_that_would_fail_at_dispatch_is_a_422_naming_the_problem(
        client: Client, store: RedisStore, content: str, fragment: str) -> None:
    t = make_template(client)
    before = keys_of(store)
    r = add_version(client, t["id"], content)
    assert r.status_code == 422 and fragment in r.json["error"]
    assert keys_of(store) == before


def test_version_content_cannot_be_changed(client: Client) -> None:
    t = make_template(client)
    v = add_version(client, t["id"]).json["data"]
    for method in ("PATCH", "DELETE", "POST"):
        r = client.request(method, f"/api/templates/{t['id']}/versions/{v['id']}", json={"content": "changed"})
        assert r.status_code in (404, 405)
    promoted_or_not = client.get(f"/api/templates/{t['id']}/versions").json["data"][0]
    assert promoted_or_not["content"] == "Hello {{issue.title}}"


@pytest.mark.slow
def test_concurrent_version_creation_numbers_versions_without_gaps_or_duplicates(store: RedisStore) -> None:
    t = store.prompts.templates.create({"slug": "race", "name": "Race"})
    made: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            made.append(store.prompts.versions.create(
                t["id"], {"content": f"v {i}", "authorType": "agent", "authorName": f"a{i}"}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(v["version"] for v in made) == list(range(1, 17))
    assert [v["status"] for v in made].count("active") == 1
    active = next(v for v in made if v["status"] == "active")
    assert store.prompts.templates.get_live(t["id"])["activeVersionId"] == active["id"]


# ---------------------------------------------------------------------------- promote
def test_promote_activates_the_version_and_retires_the_previous_one(client: Client) -> None:
    t = make_template(client)
    v1 = add_version(client, t["id"]).json["data"]
    v2 = add_version(client, t["id"], "Two").json["data"]
    r = client.post(f"/api/templates/{t['id']}/versions/{v2['id']}/promote")
    assert r.status_code == 200 and r.json["data"]["status"] == "active" and r.json["data"]["id"] == v2["id"]
    statuses = {v["id"]: v["status"] for v in client.get(f"/api/templates/{t['id']}/versions").json["data"]}
    assert statuses == {v1["id"]: "retired", v2["id"]: "active"}
    assert client.get(f"/api/templates/{t['id']}").json["data"]["activeVersionId"] == v2["id"]
    # A retired version can be promoted back (the only rollback there is).
    assert client.post(f"/api/templates/{t['id']}/versions/{v1['id']}/promote").status_code == 200
    statuses = {v["id"]: v["status"] for v in client.get(f"/api/templates/{t['id']}/versions").json["data"]}
    assert statuses == {v1["id"]: "active", v2["id"]: "retired"}


def test_promote_errors(client: Client) -> None:
    t = make_template(client)
    other = make_template(client, slug="other")
    v1 = add_version(client, t["id"]).json["data"]
    foreign = add_version(client, other["id"]).json["data"]
    assert client.post(f"/api/templates/{t['id']}/versions/{v1['id']}/promote").json == {
        "error": "Version is already active"}
    assert client.post(f"/api/templates/nope/versions/{v1['id']}/promote").json == {"error": "Template not found"}
    assert client.post(f"/api/templates/{t['id']}/versions/nope/promote").json == {"error": "Version not found"}
    r = client.post(f"/api/templates/{t['id']}/versions/{foreign['id']}/promote")
    assert r.status_code == 404 and r.json == {"error": "Version not found"}


@pytest.mark.slow
def test_concurrent_promotes_leave_exactly_one_active_version(store: RedisStore) -> None:
    t = store.prompts.templates.create({"slug": "promo", "name": "Promo"})
    versions = [store.prompts.versions.create(t["id"], {"content": f"c{i}", "authorType": "human",
                                                         "authorName": "h"}) for i in range(8)]
    barrier = threading.Barrier(7)

    def promote(vid: str) -> None:
        barrier.wait()
        store.prompts.versions.promote(t["id"], vid)

    threads = [threading.Thread(target=promote, args=(v["id"],)) for v in versions[1:]]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rows = store.prompts.versions.get_many([v["id"] for v in versions])
    active = [v["id"] for v in rows if v["status"] == "active"]
    assert len(active) == 1
    assert store.prompts.templates.get_live(t["id"])["activeVersionId"] == active[0]
    assert {v["status"] for v in rows if v["id"] != active[0]} <= {"retired", "draft"}
    assert versions[0]["id"] not in active


# ---------------------------------------------------------------------------- reviews list
def test_reviews_of_all_versions_are_listed_newest_first(client: Client, clock: Any) -> None:
    t = make_template(client)
    v1 = add_version(client, t["id"]).json["data"]
    v2 = add_version(client, t["id"], "Two").json["data"]
    assert client.get(f"/api/templates/{t['id']}/reviews").json == {"data": [], "total": 0}
    for vid, score in ((v1["id"], 4), (v2["id"], 5)):
        clock.advance(1)
        client.post("/api/prompt-reviews", json={"versionId": vid, "issueId": "i", "clarity": score,
                                                 "completeness": score, "relevance": score, "authorType": "agent"})
    r = client.get(f"/api/templates/{t['id']}/reviews")
    assert r.json["total"] == 2
    assert [x["versionId"] for x in r.json["data"]] == [v2["id"], v1["id"]]


def test_a_template_without_versions_has_no_reviews(client: Client) -> None:
    t = make_template(client)
    assert client.get(f"/api/templates/{t['id']}/reviews").json == {"data": [], "total": 0}


def test_template_endpoints_need_a_key(client: Client) -> None:
    assert client.get("/api/templates", auth=False).status_code == 401
    assert client.post("/api/prompt-reviews", json={}, auth=False).status_code == 401


def test_openapi_documents_the_prompt_entities(client: Client) -> None:
    doc = client.get("/api/openapi.json").json
    for name in ("PromptTemplate", "PromptVersion", "PromptReview"):
        assert name in doc["components"]["schemas"]
    assert {"/api/templates", "/api/templates/preview/{issue_id}", "/api/prompt-reviews",
            "/api/dashboard/prompts"} <= set(doc["paths"])
