"""The dashboard's signal group counts, goal readings chart and incoming relations (issue 15)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import keys_of
from tests.ui_helpers import Browser

SIGNAL = {"source": "sentry", "type": "error", "severity": "high", "title": "Checkout crashes",
          "fingerprint": "sentry:issue:42", "payload": {"message": "boom"}}


@pytest.fixture
def browser(client):
    return Browser(client)


def test_the_signals_page_shows_how_many_signals_each_group_holds(browser, client):
    for n in range(3):
        assert client.post("/api/signals", json={**SIGNAL, "payload": {"n": n}}).status_code in (200, 201)
    page = browser.get("/ui/signals").text
    groups = re.findall(r'<td class="group">([^<]*)</td>', page)
    assert groups == ["3 signals"] * 3


def test_a_goal_page_draws_its_readings_oldest_to_newest_with_the_target_line(browser, client):
    goal = client.post("/api/goals", json={"title": "Faster checkout", "metric": "p95_ms",
                                           "targetValue": 300}).json["data"]
    for day, value in ((1, 900), (2, 700), (3, 500)):
        r = client.post(f"/api/goals/{goal['id']}/readings", json={"value": value, "at": f"2026-01-0{day}T00:00:00Z"})
        assert r.status_code == 201, r.text
    assert f'href="/ui/goals/{goal["id"]}"' in browser.get("/ui/goals").text
    page = browser.get(f"/ui/goals/{goal['id']}").text
    titles = re.findall(r"<circle[^>]*><title>([\d.]+) at", page)
    assert [float(t) for t in titles] == [900, 700, 500]
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', page)]
    assert ys[0] < ys[1] < ys[2]  # falling values are drawn lower (SVG y grows downward)
    assert 'class="target"' in page and "3 newest of 3" in page


def test_a_missing_goal_page_answers_404_and_writes_nothing(browser, store):
    before = keys_of(store)
    r = browser.get("/ui/goals/nosuchgoal")
    assert r.status_code == 404 and "not found" in r.text.lower()
    assert keys_of(store) == before


def test_the_issue_page_lists_relations_other_issues_hold_toward_it(browser, client):
    a = client.post("/api/issues", json={"title": "A", "type": "task"}).json["data"]
    b = client.post("/api/issues", json={"title": "B", "type": "task"}).json["data"]
    assert client.post(f"/api/issues/{a['id']}/relations",
                       json={"type": "blocks", "relatedIssueId": b["id"]}).status_code == 201
    page = browser.get(f"/ui/issues/{b['id']}").text
    incoming = re.search(r'<ul class="incoming">(.*?)</ul>', page, re.S)
    assert incoming and a["id"] in incoming.group(1) and "blocks this issue" in incoming.group(1)


def test_the_queue_page_lists_scheduled_issues_soonest_first_with_their_due_time(browser, client, clock):
    later = client.post("/api/issues", json={"title": "Re-check in two days", "type": "monitor", "status": "todo",
                                              "notBefore": "2026-02-22T12:00:00.000Z"}).json["data"]
    sooner = client.post("/api/issues", json={"title": "Re-check <tomorrow>", "type": "monitor", "status": "todo",
                                               "notBefore": "2026-02-21T12:00:00.000Z"}).json["data"]
    page = browser.get("/ui/queue").text
    section = page[page.index('<h2 id="scheduled">'):]
    rows = re.search(r"<tbody>(.*?)</tbody>", section, re.S)
    assert rows
    body = rows.group(1)
    assert body.index(f"#{sooner['number']}") < body.index(f"#{later['number']}")
    assert "Re-check &lt;tomorrow&gt;" in body and 'datetime="2026-02-21T12:00:00.000Z"' in body
    assert "1–2 of 2" in section
    clock.advance(3 * 24 * 3600)  # both fall due: they leave the scheduled list for the queue
    page = Browser(client).get("/ui/queue").text  # a new login: the first session has expired by now
    assert "Nothing is scheduled." in page and "Re-check &lt;tomorrow&gt;" in page
