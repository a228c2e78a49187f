"""The dashboard in a real browser: headless system Chromium (Selenium) against a live gunicorn +
worker + real Redis. Log in, walk every page, perform each override and check it through the API."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import start_browser
from tests.live_server import live_server_fixture

pytestmark = pytest.mark.slow

live = live_server_fixture()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = start_browser()
    try:
        yield browser
    finally:
        browser.quit()


class Api:
    """The live server's JSON API with the bootstrap key (checks what the browser did)."""

    def __init__(self, live: Any) -> None:
        self.live = live

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(self.live.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.live.api_key}",
                                              "Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw)["data"] if raw else None

    def issue(self, issue_id: str) -> Any:
        return self("GET", f"/api/issues/{issue_id}")

    def create(self, **fields: Any) -> Any:
        return self("POST", "/api/issues", {"type": "task", **fields})


def by_css(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def wait_path(driver: Any, live: Any, prefix: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = driver.current_url[len(live.url):]
        if path.startswith(prefix):
            return path
        time.sleep(0.05)
    raise AssertionError(f"still at {driver.current_url}, wanted {prefix}")


def submit(driver: Any, form_css: str, **fields: str) -> None:
    from selenium.webdriver.support.ui import Select

    form = by_css(driver, form_css)
    for name, value in fields.items():
        el = form.find_element("name", name)
        if el.tag_name == "select":
            Select(el).select_by_visible_text(value)
        else:
            el.clear()
            el.send_keys(value)
    click(driver, form.find_element("css selector", "button[type=submit]"))


def click(driver: Any, element: Any) -> None:
    """Click and wait for the next page to replace this one (forms POST, then redirect)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    element.click()

    def replaced(_: Any) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:  # chromium, caught mid-navigation, names the old node this way
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, 10).until(replaced)


def log_in(driver: Any, live: Any, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(live.url + "/ui/login")
    submit(driver, "form[action='/ui/login']", key=key)


@pytest.fixture(scope="module")
def logged_in(driver: Any, live: Any) -> Any:
    log_in(driver, live, live.api_key)
    wait_path(driver, live, "/ui")
    return driver


def test_a_wrong_key_cannot_log_in(driver, live):
    log_in(driver, live, "loop_not-a-key")
    assert "not valid" in by_css(driver, ".error").text
    assert driver.get_cookie("loop_session") is None
    driver.get(live.url + "/ui/issues")
    assert driver.current_url.startswith(live.url + "/ui/login")


def test_the_browser_opens_the_dashboard_at_slash_and_the_cookie_is_httponly(logged_in, live):
    logged_in.get(live.url + "/")
    wait_path(logged_in, live, "/ui")
    cookie = logged_in.get_cookie("loop_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert logged_in.execute_script("return document.cookie").find("loop_session") == -1
    assert live.api_key not in logged_in.page_source


@pytest.mark.parametrize("path,heading", [("/ui", "Overview"), ("/ui/queue", "Queue"), ("/ui/issues", "Issues"),
                                          ("/ui/signals", "Signals"), ("/ui/goals", "Goals"),
                                          ("/ui/prompts", "Prompt templates"), ("/ui/ops", "Operations")])
def test_every_page_renders_without_script_errors(logged_in, live, path, heading):
    logged_in.get(live.url + path)
    assert by_css(logged_in, "h1").text.startswith(heading)
    # Script errors and CSP violations (the network log also holds the earlier tests' 401s).
    errors = [e for e in logged_in.get_log("browser")
              if e["level"] == "SEVERE" and e.get("source") in ("javascript", "security")]
    assert errors == []


def test_overrides_made_in_the_browser_show_through_the_api(logged_in, live):
    api = Api(live)
    driver = logged_in
    driver.get(live.url + "/ui/issues")
    by_css(driver, "details#new summary").click()
    submit(driver, "form[action='/ui/issues/new']", title="Made in a browser", type="plan", priority="1")
    path = wait_path(driver, live, "/ui/issues/")
    issue_id = path.split("/")[3].split("#")[0]
    assert api.issue(issue_id)["title"] == "Made in a browser"

    submit(driver, "form[action$='/update']", status="todo", priority="3", type="task")
    wait_path(driver, live, f"/ui/issues/{issue_id}")
    got = api.issue(issue_id)
    assert (got["status"], got["priority"], got["type"]) == ("todo", 3, "task")

    submit(driver, "form[action$='/comments']", body="A person was here")
    wait_path(driver, live, f"/ui/issues/{issue_id}")
    assert "A person was here" in driver.page_source

    other = api.create(title="Blocker", status="todo")
    submit(driver, "form[action$='/relations']", type="blocked_by", relatedIssueId=str(other["number"]))
    wait_path(driver, live, f"/ui/issues/{issue_id}")
    relations = api.issue(issue_id)["relations"]
    assert [(r["type"], r["relatedIssueId"]) for r in relations] == [("blocked_by", other["id"])]
    click(driver, by_css(driver, "form[action^='/ui/relations/'] button"))
    wait_path(driver, live, f"/ui/issues/{issue_id}")
    assert api.issue(issue_id)["relations"] == []

    click(driver, by_css(driver, "form[action$='/cancel'] button"))
    wait_path(driver, live, f"/ui/issues/{issue_id}")
    assert api.issue(issue_id)["status"] == "canceled"


def test_a_claim_is_released_from_the_browser(logged_in, live):
    api = Api(live)
    api.create(title="Held by an agent", status="todo", priority=0)
    issue = api("GET", "/api/dispatch/next")["issue"]  # whichever is first: earlier tests left todo issues
    logged_in.get(f"{live.url}/ui/issues/{issue['id']}")
    assert "left" in by_css(logged_in, "time[data-countdown]").text  # app.js ran: a live countdown
    click(logged_in, by_css(logged_in, "form[action$='/release'] button"))
    wait_path(logged_in, live, f"/ui/issues/{issue['id']}")
    assert api.issue(issue["id"])["status"] == "todo"


def test_a_prompt_version_is_promoted_from_the_browser(logged_in, live):
    api = Api(live)
    template = api("GET", "/api/templates")[0]
    active = api("GET", f"/api/templates/{template['id']}")["activeVersion"]
    v2 = api("POST", f"/api/templates/{template['id']}/versions",
             {"content": active["content"] + "\n", "authorType": "human", "authorName": "browser-test"})
    logged_in.get(f"{live.url}/ui/prompts/{template['id']}")
    click(logged_in, by_css(logged_in, f"form[action$='/versions/{v2['id']}/promote'] button"))
    wait_path(logged_in, live, f"/ui/prompts/{template['id']}")
    assert api("GET", f"/api/templates/{template['id']}")["activeVersionId"] == v2["id"]


def test_a_form_without_its_csrf_token_is_refused(logged_in, live):
    api = Api(live)
    issue = api.create(title="Untouchable")
    logged_in.get(f"{live.url}/ui/issues/{issue['id']}")
    logged_in.execute_script("document.querySelectorAll(\"form[action$='/update'] input[name=csrf]\")"
                             ".forEach(function (e) { e.remove(); })")
    submit(logged_in, "form[action$='/update']", status="done")
    assert "CSRF" in by_css(logged_in, ".error").text
    assert api.issue(issue["id"])["status"] == issue["status"]


def test_an_issue_titled_script_renders_as_text(logged_in, live):
    api = Api(live)
    issue = api.create(title="<script>document.title='pwned'</script>")
    logged_in.get(f"{live.url}/ui/issues/{issue['id']}")
    assert by_css(logged_in, "h1").text.endswith("<script>document.title='pwned'</script>")
    assert logged_in.title != "pwned"


def test_keyboard_shortcuts_move_between_pages(logged_in, live):
    from selenium.webdriver.common.action_chains import ActionChains

    logged_in.get(live.url + "/ui")
    ActionChains(logged_in).send_keys("g").send_keys("q").perform()
    wait_path(logged_in, live, "/ui/queue")


def test_a_relation_added_in_the_browser_lists_the_issue_as_blocked_on_the_queue_page(logged_in, live):
    api, driver = Api(live), logged_in
    waiting = api.create(title="Waits for the blocker", status="todo")
    blocker = api.create(title="The blocker", status="todo")
    driver.get(f"{live.url}/ui/issues/{waiting['id']}")
    submit(driver, "form[action$='/relations']", type="blocked_by", relatedIssueId=str(blocker["number"]))
    wait_path(driver, live, f"/ui/issues/{waiting['id']}")
    driver.get(live.url + "/ui/queue")
    row = [tr for tr in driver.find_elements("css selector", "table.blocked tbody tr")
           if f"#{waiting['number']}" in tr.text]
    assert row and f"#{blocker['number']}" in row[0].text
    click(driver, row[0].find_element("css selector", f"span.blocker a[href='/ui/issues/{blocker['id']}']"))
    wait_path(driver, live, f"/ui/issues/{blocker['id']}")
    assert waiting["id"] in by_css(driver, "ul.incoming").text


def test_a_goal_page_draws_its_readings(logged_in, live):
    api, driver = Api(live), logged_in
    goal = api("POST", "/api/goals", {"title": "Faster checkout", "metric": "p95_ms", "targetValue": 300})
    for value in (900, 600):
        api("POST", f"/api/goals/{goal['id']}/readings", {"value": value})
    driver.get(live.url + "/ui/goals")
    click(driver, by_css(driver, f"a[href='/ui/goals/{goal['id']}']"))
    wait_path(driver, live, f"/ui/goals/{goal['id']}")
    assert len(driver.find_elements("css selector", "svg.readings circle")) == 2
    errors = [e for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and e.get("source") in ("javascript", "security")]
    assert errors == []
