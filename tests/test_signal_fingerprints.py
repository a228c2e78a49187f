"""Webhook normalizers derive fingerprints from the provider's own identity; metric deliveries
record goal readings in the signal's write (issue 14)."""

from __future__ import annotations

import json
from typing import Any

from loop.signals import github, posthog, sentry
from tests.fixtures.webhooks import fixture_bytes, posthog_headers
from workers.signals import normalize_delivery


def load(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


def test_sentry_deliveries_of_one_sentry_issue_share_its_issue_id_as_fingerprint():
    issue = sentry.normalize("issue", load("sentry/issue.created.json"))
    alert = sentry.normalize("event_alert", load("sentry/event_alert.triggered.json"))
    assert issue.fingerprint == alert.fingerprint == "sentry:issue:1170820242"
    assert sentry.normalize("error", load("sentry/error.created.json")).fingerprint == "sentry:issue:1170820243"
    assert sentry.normalize("metric_alert", load("sentry/metric_alert.critical.json")).fingerprint.startswith(
        "sentry:metric_alert:")


def test_a_failed_workflow_groups_by_repository_workflow_and_branch():
    run = load("github/workflow_run.completed.json")
    run["workflow_run"].update(status="completed", conclusion="failure")
    fp = github.normalize("workflow_run", run).fingerprint
    assert fp is not None and fp.startswith("github:") and "workflow_run" in fp
    run["workflow_run"]["head_branch"] = "other-branch"
    assert github.normalize("workflow_run", run).fingerprint != fp


def test_security_alerts_group_by_their_alert_number_and_other_events_do_not_group():
    alert = load("github/dependabot_alert.created.json")
    fp = github.normalize("dependabot_alert", alert).fingerprint
    assert fp == f"github:{alert['repository']['full_name']}:dependabot_alert:{alert['alert']['number']}"
    assert github.normalize("issues", load("github/issues.opened.json")).fingerprint is None


def test_posthog_alerts_group_by_alert_id_and_metric_changes_carry_a_reading():
    firing = posthog.normalize(load("posthog/insight_alert_firing.json"))
    assert firing.fingerprint is not None and firing.fingerprint.startswith("posthog:alert:")
    change = posthog.normalize(load("posthog/metric_change.json"))
    assert (change.fingerprint, change.metric, change.value) == ("posthog:metric:error_rate", "error_rate", 55.0)


def test_a_posthog_metric_delivery_records_a_reading_on_the_goal_measured_by_that_metric(client, store):
    from tests.fixtures.webhooks import open_queue

    goal = client.post("/api/goals", json={"title": "Fewer errors", "metric": "error_rate", "targetValue": 1,
                                           "direction": "decrease"}).json["data"]
    other = client.post("/api/goals", json={"title": "Other", "metric": "signups", "targetValue": 1}).json["data"]
    queue = next(open_queue(store.settings))
    try:
        body = fixture_bytes("posthog/metric_change.json")
        assert client.post("/api/signals/posthog", body=body, headers=posthog_headers(), auth=False).status_code == 202
        (job,) = queue.jobs
        result = normalize_delivery(job.args[0], client=store.r)
    finally:
        queue.empty()
    assert result["status"] == "created"
    assert client.get(f"/api/goals/{goal['id']}").json["data"]["currentValue"] == 55
    assert client.get(f"/api/goals/{goal['id']}/readings").json["data"][0]["source"] == "posthog"
    assert client.get(f"/api/goals/{other['id']}/readings").json["total"] == 0
