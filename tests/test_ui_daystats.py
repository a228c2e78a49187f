"""The overview's per-day/hour issue counters (loop/store/daystats.py) and the funnel and charts
they feed, against a real Redis with a frozen clock."""

from __future__ import annotations

import re

from loop.store.daystats import DayStats
from tests.ui_helpers import Browser

HOUR = 3600


def create(store, issue_type="task", **fields):
    return store.issues.create({"title": "x", "type": issue_type, **fields})


def test_creating_and_completing_issues_counts_them_in_the_day_and_hour_windows(store, clock):
    a = create(store, "signal")
    create(store, "hypothesis")
    store.issues.update(a["id"], {"status": "done"})
    w = DayStats(store).window()
    for name in ("day", "week"):
        assert w[name]["created"]["signal"] == 1 and w[name]["created"]["hypothesis"] == 1
        assert w[name]["created"]["task"] == 0
        assert w[name]["done"]["signal"] == 1 and sum(w[name]["done"].values()) == 1
    assert len(w["hours"]) == 24 and len(w["days"]) == 7
    assert (w["hours"][-1]["created"], w["hours"][-1]["done"]) == (2, 1)
    assert (w["days"][-1]["created"], w["days"][-1]["done"]) == (2, 1)


def test_events_older_than_a_day_leave_the_24h_window_but_stay_in_the_week(store, clock):
    done = create(store, "plan")
    store.issues.update(done["id"], {"status": "done"})
    clock.advance(30 * HOUR)
    create(store, "task")
    w = DayStats(store).window()
    assert w["day"]["created"]["plan"] == 0 and w["day"]["created"]["task"] == 1
    assert sum(w["day"]["done"].values()) == 0
    assert w["week"]["created"]["plan"] == 1 and sum(w["week"]["done"].values()) == 1
    clock.advance(7 * 24 * HOUR)
    assert sum(DayStats(store).window()["week"]["created"].values()) == 0


def test_other_writes_do_not_count_and_an_issue_created_done_counts_once_each(store, clock):
    issue = create(store, status="done")
    store.issues.update(issue["id"], {"title": "renamed"})
    store.issues.update(issue["id"], {"priority": 1})
    store.issues.delete(issue["id"])
    w = DayStats(store).window()
    assert w["day"]["created"]["task"] == 1 and w["day"]["done"]["task"] == 1


def test_the_counter_hashes_expire(store, clock):
    create(store)
    keys = [k for k in store.r.scan_iter(match=f"{store.keys.stats_bucket('', '')[:-2]}*")]
    assert len(keys) == 2  # one day, one hour
    assert all(0 < store.r.ttl(k) <= 35 * 86400 for k in keys)


def test_the_overview_shows_the_funnel_for_24h_and_7d_and_two_charts(client, store, clock):
    create(store, "signal")
    clock.advance(48 * HOUR)
    s = create(store, "signal")
    create(store, "task")
    store.issues.update(s["id"], {"status": "done"})
    m = create(store, "monitor", status="todo")
    store.issues.update(m["id"], {"status": "done", "outcome": "validated"})
    page = Browser(client).get("/ui").text  # logged in now: a session lasts 12 h
    day = re.search(r'<tr class="funnel-day">(.*?)</tr>', page, re.S)
    week = re.search(r'<tr class="funnel-week">(.*?)</tr>', page, re.S)
    assert day and week
    cells = lambda row: re.findall(r"<td>(?:<b>)?(\d+)", row.group(1))  # noqa: E731
    # signal, hypothesis, plan, task, monitor, outcomes (monitors concluded)
    assert cells(day) == ["1", "0", "0", "1", "1", "1"]
    assert cells(week) == ["2", "0", "0", "1", "1", "1"]
    assert "1 validated · 0 invalidated" in day.group(1)
    assert ">hypotheses</a>" in page and "hypothesiss" not in page
    assert page.count('<svg class="columns"') == 2
    assert "3 created, 2 completed" in page


def test_a_concluded_monitor_counts_as_an_outcome_once_and_its_hypothesis_not_again(store, clock):
    hyp = create(store, "hypothesis", status="todo")
    monitor = create(store, "monitor", status="todo")
    store.relations.create(monitor["id"], "related", hyp["id"])
    store.issues.update(monitor["id"], {"status": "done", "outcome": "invalidated", "agentSummary": "no change"})
    store.issues.update(monitor["id"], {"title": "re-titled"})  # the same outcome again: no second count
    w = DayStats(store).window()
    assert w["day"]["outcome"] == {"validated": 0, "invalidated": 1, "inconclusive": 0}
    assert store.issues.get(hyp["id"])["outcome"] == "invalidated"  # received, not counted twice
