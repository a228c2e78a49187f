"""The dashboard's views (api/ui) through falcon.testing: the session gate, CSRF, escaping, pages,
and every human override checked through the API."""

from __future__ import annotations

import re

import pytest

from api import ui
from api.http import Api
from tests.conftest import API_KEY, keys_of
from tests.ui_helpers import FORM, HTML, Browser, login


@pytest.fixture
def browser(client):
    return Browser(client)


def make_issue(client, **fields):
    r = client.post("/api/issues", json={"title": "An issue", "type": "task", **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def ui_routes(store, settings, clock):
    api = Api(store, settings, clock)
    return [(re.sub(r"\{[^}]+\}", "x", path), res) for path, res in ui.routes(api, ui.Signer(store), object())]


def test_a_browser_asking_for_slash_is_sent_to_the_dashboard_while_api_clients_keep_the_json(client):
    r = client.get("/", auth=False, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 303 and r.headers["location"].endswith("/ui")
    for accept in (None, "*/*", "application/json"):
        r = client.get("/", auth=False, headers={"Accept": accept} if accept else {})
        assert r.status_code == 200 and r.json["name"] == "Loop API", accept


def test_every_ui_route_without_a_session_redirects_to_login_or_answers_401(client, store, settings, clock):
    before = keys_of(store)
    checked = 0
    for path, resource in ui_routes(store, settings, clock):
        if getattr(resource, "public", False) or path == "/":
            continue
        for method in ("GET", "POST"):
            if not hasattr(resource, f"on_{method.lower()}"):
                continue
            r = client.request(method, path, auth=False, headers=FORM)
            if method == "GET" and not resource.fragment:
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/ui/login?next="), path
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked > 20
    assert keys_of(store) == before


def test_a_bearer_key_alone_does_not_open_a_dashboard_page(client):
    r = client.get("/ui/issues", headers=HTML)  # Authorization: Bearer, no cookie
    assert r.status_code == 303


def test_a_wrong_key_cannot_log_in_and_gets_no_session(client):
    r = login(client, "loop_wrong")
    assert r.status_code == 401
    assert "loop_session" not in r.cookies
    assert "not valid" in r.text


def test_login_sets_an_httponly_samesite_strict_cookie_that_never_holds_the_key(client):
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.cookies["loop_session"]
    assert cookie.http_only and cookie.same_site == "Strict"
    assert API_KEY not in cookie.value
    page = client.get("/ui", auth=False, headers=HTML, cookies={"loop_session": cookie.value})
    assert page.status_code == 200 and API_KEY not in page.text


def test_login_without_the_form_token_is_refused(client):
    r = client.post("/ui/login", auth=False, headers=FORM, body=f"key={API_KEY}")
    assert r.status_code == 403 and "loop_session" not in r.cookies


def test_a_tampered_session_cookie_is_no_session(client, browser):
    payload, mac = browser.cookie.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    r = client.get("/ui", auth=False, headers=HTML, cookies={"loop_session": forged})
    assert r.status_code == 303


def test_revoking_a_named_key_ends_its_dashboard_sessions(client, store):
    created = store.apikeys.create("alice")
    alice = Browser(client, created["key"])
    assert alice.get("/ui/issues").status_code == 200
    store.apikeys.delete("alice")
    assert alice.get("/ui/issues").status_code == 303


def test_after_logout_the_cookie_is_cleared(browser):
    r = browser.post("/ui/logout")
    assert r.status_code == 303 and r.cookies["loop_session"].value == ""


@pytest.mark.parametrize("path", ["/ui", "/ui/queue", "/ui/issues", "/ui/signals", "/ui/goals", "/ui/prompts",
                                  "/ui/ops", "/ui/fragments/counters"])
def test_every_page_renders_with_a_csp_that_allows_no_inline_script(browser, client, path):
    make_issue(client, status="todo")
    r = browser.get(path)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", r.text) == []


def test_the_issue_page_shows_chain_payload_sessions_comments_and_prompt(browser, client):
    parent = make_issue(client, title="Parent")
    issue = make_issue(client, title="Child", parentId=parent["id"], status="todo",
                       signalSource="sentry", signalPayload={"error": "boom"})
    client.post(f"/api/issues/{issue['id']}/comments", json={"body": "first", "authorName": "bot",
                                                               "authorType": "agent"})
    r = browser.get(f"/ui/issues/{issue['number']}")
    assert r.status_code == 200
    for text in ("Parent", "boom", "first", "Prompt the next agent would get", "Sessions"):
        assert text in r.text, text


def test_an_issue_titled_script_renders_as_text(browser, client):
    make_issue(client, title="<script>alert(1)</script>")
    r = browser.get("/ui/issues")
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_the_go_to_box_opens_an_issue_by_number(browser, client):
    issue = make_issue(client)
    r = browser.get("/ui/issues", query_string=f"number={issue['number']}")
    assert r.status_code == 303 and r.headers["location"].endswith(f"/ui/issues/{issue['number']}")


def test_the_issues_page_filters_and_counts_exactly(browser, client):
    for _ in range(3):
        make_issue(client, status="todo")
    make_issue(client, status="backlog")
    r = browser.get("/ui/issues", query_string="status=todo")
    assert "1–3 of 3" in r.text


def test_a_bad_filter_shows_the_api_error(browser):
    r = browser.get("/ui/issues", query_string="status=nope")
    assert r.status_code == 400 and "status" in r.text


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(browser, client, store):
    issue = make_issue(client)
    before = keys_of(store)
    r = browser.post(f"/ui/issues/{issue['id']}/update", {"status": "done"}, csrf=False)
    assert r.status_code == 403 and "CSRF" in r.text
    assert keys_of(store) == before
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["status"] == issue["status"]


def test_creating_an_issue_from_the_form_makes_it_through_the_api(browser, client):
    r = browser.post("/ui/issues/new", {"title": "From the UI", "type": "plan", "priority": "1", "status": ""})
    assert r.status_code == 303
    issue_id = r.headers["location"].rsplit("/", 1)[1]
    got = client.get(f"/api/issues/{issue_id}").json["data"]
    assert (got["title"], got["type"], got["priority"]) == ("From the UI", "plan", 1)


def test_a_form_that_fails_validation_shows_the_api_error_and_changes_nothing(browser, store):
    before = keys_of(store)
    r = browser.post("/ui/issues/new", {"title": "x", "type": "task", "priority": "9"})
    assert r.status_code == 400 and "priority" in r.text
    assert keys_of(store) == before


def test_status_priority_and_type_change_and_cancel(browser, client):
    issue = make_issue(client)
    r = browser.post(f"/ui/issues/{issue['id']}/update", {"status": "todo", "priority": "2", "type": "plan"})
    assert r.status_code == 303
    got = client.get(f"/api/issues/{issue['id']}").json["data"]
    assert (got["status"], got["priority"], got["type"]) == ("todo", 2, "plan")
    assert browser.post(f"/ui/issues/{issue['id']}/cancel").status_code == 303
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["status"] == "canceled"


def test_a_comment_is_signed_with_the_key_that_logged_in(browser, client):
    issue = make_issue(client)
    assert browser.post(f"/ui/issues/{issue['id']}/comments", {"body": "Looks right"}).status_code == 303
    comments = client.get(f"/api/issues/{issue['id']}/comments").json["data"]
    assert [(c["body"], c["authorType"]) for c in comments] == [("Looks right", "human")]


def test_a_blocking_relation_is_added_by_number_and_removed(browser, client):
    a, b = make_issue(client, status="todo"), make_issue(client, status="todo")
    r = browser.post(f"/ui/issues/{a['id']}/relations", {"type": "blocked_by", "relatedIssueId": f"#{b['number']}"})
    assert r.status_code == 303
    relations = client.get(f"/api/issues/{a['id']}").json["data"]["relations"]
    assert [(x["type"], x["relatedIssueId"]) for x in relations] == [("blocked_by", b["id"])]
    queued = [i["issue"]["id"] for i in client.get("/api/dispatch/queue").json["data"]]
    assert a["id"] not in queued
    assert browser.post(f"/ui/relations/{relations[0]['id']}/delete").status_code == 303
    assert client.get(f"/api/issues/{a['id']}").json["data"]["relations"] == []


def test_a_person_can_release_an_agents_claim(browser, client):
    issue = make_issue(client, status="todo")
    claim = client.get("/api/dispatch/next").json["claim"]
    r = browser.post(f"/ui/sessions/{claim['sessionId']}/release")
    assert r.status_code == 303, r.text
    assert client.get(f"/api/dispatch/claims/{claim['sessionId']}").json["data"]["status"] == "released"
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["status"] == "todo"


def test_promoting_a_prompt_version(browser, client):
    template = client.get("/api/templates").json["data"][0]
    content = client.get(f"/api/templates/{template['id']}").json["data"]["activeVersion"]["content"]
    v2 = client.post(f"/api/templates/{template['id']}/versions",
                     json={"content": content + "\n", "changelog": "x", "authorType": "human",
                           "authorName": "me"}).json["data"]
    page = browser.get(f"/ui/prompts/{template['id']}", query_string=f"a={template['activeVersionId']}&b={v2['id']}")
    assert page.status_code == 200 and f"Promote v{v2['version']}" in page.text
    assert browser.post(f"/ui/prompts/{template['id']}/versions/{v2['id']}/promote").status_code == 303
    assert client.get(f"/api/templates/{template['id']}").json["data"]["activeVersionId"] == v2["id"]


def test_a_new_api_key_is_shown_once_and_can_be_revoked(browser, client, store):
    r = browser.post("/ui/ops/keys", {"name": "ci-bot"})
    assert r.status_code == 201
    key = re.search(r'class="secret">([^<]+)<', r.text).group(1)
    assert store.apikeys.authenticate(key) == "ci-bot"
    assert key not in browser.get("/ui/ops").text
    key_id = next(k["id"] for k in store.apikeys.list() if k["name"] == "ci-bot")
    assert browser.post(f"/ui/ops/keys/{key_id}/revoke").status_code == 303
    assert store.apikeys.authenticate(key) is None


def test_only_the_bootstrap_key_manages_keys_from_the_dashboard(client, store):
    alice = Browser(client, store.apikeys.create("alice")["key"])
    before = keys_of(store)
    r = alice.post("/ui/ops/keys", {"name": "sneaky"})
    assert r.status_code == 403
    assert keys_of(store) == before


def test_a_failed_webhook_job_is_shown_and_requeued(browser, settings, store):
    from rq import Queue
    from rq.results import Result

    queue = Queue(settings.queue_name, connection=store.rq)
    job = queue.enqueue("workers.signals.nonexistent", "the-payload")
    queue.remove(job)
    queue.failed_job_registry.add(job, ttl=600)
    Result.create_failure(job, 600, "Traceback: boom")  # what a worker records when the job fails
    try:
        page = browser.get("/ui/ops")
        assert job.id in page.text and "the-payload" in page.text and "boom" in page.text
        r = browser.post(f"/ui/ops/jobs/{job.id}/requeue")
        assert r.status_code == 303
        assert job.id not in queue.failed_job_registry and job.id in queue.job_ids
        again = browser.post(f"/ui/ops/jobs/{job.id}/requeue")
        assert again.status_code == 404 and "not found" in again.text
    finally:
        queue.empty()  # deletes the job too
        for key in store.r.scan_iter(match=f"rq:*:{settings.queue_name}*"):
            store.r.delete(key)
