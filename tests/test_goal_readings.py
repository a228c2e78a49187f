"""Goal readings: recorded, listed newest first, the latest by ``at`` is the current value (issue 14)."""

from __future__ import annotations

import pytest

from loop.store.goals import Reading
from loop.tunables import GOAL_READINGS_KEPT
from tests.conftest import keys_of


def goal(client, **fields):
    r = client.post("/api/goals", json={"title": "Faster checkout", "metric": "p95_ms", "targetValue": 300, **fields})
    assert r.status_code == 201, r.text
    return r.json["data"]


def record(client, goal_id, **body):
    return client.post(f"/api/goals/{goal_id}/readings", json=body)


def test_a_reading_becomes_the_current_value_and_is_listed_newest_first(client):
    g = goal(client)
    r = record(client, g["id"], value=900, at="2026-01-01T00:00:00Z", source="grafana")
    assert r.status_code == 201, r.text
    assert r.json["data"]["currentValue"] == 900
    record(client, g["id"], value=700, at="2026-01-02T00:00:00Z")
    listed = client.get(f"/api/goals/{g['id']}/readings?limit=1").json
    assert listed["total"] == 2
    assert listed["data"] == [{"value": 700, "at": "2026-01-02T00:00:00.000Z", "source": None}]
    second = client.get(f"/api/goals/{g['id']}/readings?limit=1&offset=1").json["data"]
    assert second == [{"value": 900, "at": "2026-01-01T00:00:00.000Z", "source": "grafana"}]
    got = client.get(f"/api/goals/{g['id']}").json["data"]
    assert got["currentValue"] == 700 and got["lastReadingAt"] == "2026-01-02T00:00:00.000Z"
    assert [t["value"] for t in got["trend"]] == [700, 900]


def test_a_late_arriving_older_reading_is_kept_but_does_not_override_the_current_value(client):
    g = goal(client)
    record(client, g["id"], value=500, at="2026-01-05T00:00:00Z")
    late = record(client, g["id"], value=100, at="2026-01-01T00:00:00Z").json["data"]
    assert late["currentValue"] == 500 and late["status"] == "active"
    assert client.get(f"/api/goals/{g['id']}/readings").json["total"] == 2


def test_direction_is_inferred_from_the_target_and_the_first_reading(client):
    down = goal(client)  # target 300, first reading 900: decrease
    assert record(client, down["id"], value=900).json["data"]["direction"] == "decrease"
    up = goal(client, metric="signups", targetValue=100)
    assert record(client, up["id"], value=10).json["data"]["direction"] == "increase"
    set_ = goal(client, direction="increase")
    assert record(client, set_["id"], value=900).json["data"]["direction"] == "increase"


def test_a_goal_that_meets_its_target_is_achieved_and_active_again_when_it_falls_back(client, store):
    g = goal(client)
    record(client, g["id"], value=900, at="2026-01-01T00:00:00Z")
    achieved = record(client, g["id"], value=280, at="2026-01-02T00:00:00Z").json["data"]
    assert achieved["status"] == "achieved"
    assert [x["id"] for x in client.get("/api/goals?status=achieved").json["data"]] == [g["id"]]
    again = record(client, g["id"], value=350, at="2026-01-03T00:00:00Z").json["data"]
    assert again["status"] == "active"
    assert client.get("/api/goals?status=achieved").json["total"] == 0


def test_an_abandoned_goal_stays_abandoned_whatever_it_reads(client):
    g = goal(client, status="abandoned")
    assert record(client, g["id"], value=1).json["data"]["status"] == "abandoned"


def test_readings_are_capped_and_the_day_keeps_a_count_and_sum(store):
    g = store.goals.create({"title": "t", "targetValue": 1.0})
    base = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    pipe = store.r.pipeline(transaction=False)
    # Seed just below the cap directly, then record through the store: the oldest fall off.
    for i in range(GOAL_READINGS_KEPT):
        pipe.zadd(store.keys.goal_readings(g["id"]), {f'{{"v": {i}, "t": "{i}"}}': base + i})
    pipe.execute()
    store.goals.record(g["id"], Reading(5.0, base + 10_000))
    store.goals.record(g["id"], Reading(7.0, base + 20_000))
    rows, total = store.goals.readings(g["id"], 2, 0)
    assert total == GOAL_READINGS_KEPT
    assert [r["value"] for r in rows] == [7.0, 5.0]
    assert store.r.zrange(store.keys.goal_readings(g["id"]), 0, 0)[0] == '{"v": 2, "t": "2"}'
    daily = store.r.hgetall(store.keys.goal_daily(g["id"]))
    assert daily == {"2026-01-01:n": "2", "2026-01-01:sum": "12"}


def test_a_signal_with_a_goal_id_and_a_numeric_value_records_a_reading_in_the_same_write(client):
    g = goal(client, direction="decrease")
    r = client.post("/api/signals", json={"source": "grafana", "type": "metric", "severity": "low",
                                          "payload": {"value": 250}, "goalId": g["id"]})
    assert r.status_code == 201, r.text
    after = client.get(f"/api/goals/{g['id']}").json["data"]
    assert after["currentValue"] == 250 and after["status"] == "achieved"
    assert client.get(f"/api/goals/{g['id']}/readings").json["data"][0]["source"] == "grafana"


@pytest.mark.parametrize("body, field", [
    ({"value": "12"}, "value"), ({"value": True}, "value"), ({}, "value"),
    ({"value": 1, "at": "yesterday"}, "at"), ({"value": 1, "at": 5}, "at"), ({"value": 1, "source": 3}, "source"),
])
def test_a_bad_reading_is_a_400_naming_the_field_and_writes_nothing(client, store, body, field):
    g = goal(client)
    before = keys_of(store)
    r = record(client, g["id"], **body)
    assert r.status_code == 400, r.text
    assert field in r.json["details"]
    assert keys_of(store) == before


def test_a_non_finite_value_is_rejected(client, store):
    g = goal(client)
    before = keys_of(store)
    r = client.post(f"/api/goals/{g['id']}/readings", body=b'{"value": 1e999}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert keys_of(store) == before


def test_an_unknown_goal_is_a_404_and_writes_nothing(client, store):
    before = keys_of(store)
    assert record(client, "nope", value=1).status_code == 404
    assert client.get("/api/goals/nope/readings").status_code == 404
    r = client.post("/api/signals", json={"source": "x", "type": "metric", "severity": "low",
                                          "payload": {"value": 1}, "goalId": "nope"})
    assert r.status_code == 404 and "Goal" in r.json["error"]
    assert keys_of(store) == before


def test_a_signal_with_a_goal_id_but_no_numeric_value_is_a_400(client, store):
    g = goal(client)
    before = keys_of(store)
    r = client.post("/api/signals", json={"source": "x", "type": "metric", "severity": "low",
                                          "payload": {"value": "high"}, "goalId": g["id"]})
    assert r.status_code == 400 and "payload.value" in r.json["details"]
    assert keys_of(store) == before
