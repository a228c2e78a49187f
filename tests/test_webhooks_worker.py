"""Webhook -> RQ job -> signal + triage issue, with real RQ workers on the real Redis.

Covers end-to-end mapping, idempotency of the job (twice, concurrently), 50 concurrent posts
of one delivery, and exhausted retries landing in the failed registry, then requeued.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from rq.registry import FailedJobRegistry

from loop.store.signals import Signals
from tests.fixtures.webhooks import (
    drain,
    fixture_bytes,
    github_headers,
    open_queue,
    posthog_headers,
    sentry_headers,
)
from workers.signals import normalize_delivery


@pytest.fixture
def settings(settings):
    # Retries without backoff so a burst worker runs them at once.
    return dataclasses.replace(settings, webhook_retry_intervals=(0, 0))


@pytest.fixture
def rq_queue(settings):
    yield from open_queue(settings)


def signals_of(client):
    r = client.get("/api/signals?limit=200")
    assert r.status_code == 200
    return r.json


def issues_of(client):
    return client.get("/api/issues?type=signal&limit=200").json


def post_github(client, name, event, delivery):
    body = fixture_bytes(f"github/{name}.json")
    return client.post("/api/signals/github", body=body, headers=github_headers(body, event, delivery), auth=False)


def test_real_deliveries_of_all_three_providers_become_signals_and_dispatchable_issues(client, rq_queue):
    for i, (name, event) in enumerate([("issues.opened", "issues"), ("pull_request.opened", "pull_request"),
                                       ("push", "push"), ("dependabot_alert.created", "dependabot_alert"),
                                       ("workflow_run.completed", "workflow_run")]):
        assert post_github(client, name, event, f"gh-{i}").status_code == 202
    for name in ("issue.created", "event_alert.triggered", "metric_alert.critical", "error.created"):
        body = fixture_bytes(f"sentry/{name}.json")
        r = client.post("/api/signals/sentry", body=body, headers=sentry_headers(body, name.split(".")[0]), auth=False)
        assert r.status_code == 202
    for name in ("insight_alert_firing", "exception", "error_tracking_issue_created", "metric_change"):
        r = client.post("/api/signals/posthog", body=fixture_bytes(f"posthog/{name}.json"),
                        headers=posthog_headers(), auth=False)
        assert r.status_code == 202
    assert rq_queue.count == 13
    drain(rq_queue)
    listed = signals_of(client)
    # 13 deliveries; the green workflow run carries no work and creates nothing.
    assert listed["total"] == 12
    by_source = {}
    for s in listed["data"]:
        by_source.setdefault(s["source"], []).append(s)
    assert {k: len(v) for k, v in by_source.items()} == {"github": 4, "sentry": 4, "posthog": 4}
    issues = issues_of(client)
    # Two Sentry deliveries are about one Sentry issue (same issue id): they group under one issue.
    assert issues["total"] == 11
    assert sorted(i["signalCount"] for i in issues["data"]) == [1] * 10 + [2]
    assert {i["status"] for i in issues["data"]} == {"todo"}
    queue = client.get("/api/dispatch/queue?limit=200").json
    assert {item["issue"]["id"] for item in queue["data"]} == {i["id"] for i in issues["data"]}
    titles = {i["title"] for i in issues["data"]}
    assert "GitHub: issues on Codertocat/Hello-World by Codertocat" in titles
    assert "Sentry: Critical: Too many errors (critical)" in titles
    assert "PostHog: error_rate 55% (1h)" in titles
    gh = next(s for s in by_source["github"] if s["type"] == "issues")
    assert gh["payload"] == json.loads(fixture_bytes("github/issues.opened.json"))
    assert gh["deliveryId"] == "gh-0" and gh["sourceId"] == "issues.opened"
    issue = client.get(f"/api/issues/{gh['issueId']}").json["data"]
    assert issue["signalPayload"] == gh["payload"] and issue["priority"] == 3
    assert "Spelling error in the README file" in issue["description"]
    assert len(FailedJobRegistry(queue=rq_queue)) == 0


def test_a_green_build_job_finishes_as_ignored_and_creates_nothing(client, rq_queue):
    post_github(client, "workflow_run.completed", "workflow_run", "green-1")
    job = rq_queue.jobs[0]
    drain(rq_queue)
    assert job.latest_result().return_value == {"deliveryId": "green-1", "status": "ignored"}
    assert signals_of(client)["total"] == 0


def spec_of(client, rq_queue):
    post_github(client, "issues.opened", "issues", "same-delivery")
    (job,) = rq_queue.jobs
    rq_queue.empty()
    return job.args[0]


def test_running_the_same_job_twice_leaves_one_signal_and_one_issue(client, store, rq_queue):
    spec = spec_of(client, rq_queue)
    first = normalize_delivery(spec, client=store.r)
    again = normalize_delivery(spec, client=store.r)
    assert first["status"] == "created" and again["status"] == "existing"
    assert (again["signalId"], again["issueId"]) == (first["signalId"], first["issueId"])
    assert signals_of(client)["total"] == 1 and issues_of(client)["total"] == 1


def test_the_same_job_run_concurrently_leaves_one_signal_and_one_issue(client, store, rq_queue, redis_url):
    from loop.store import connect

    spec = spec_of(client, rq_queue)
    barrier = threading.Barrier(8)

    def run(_: int) -> dict:
        conn = connect(redis_url)  # one connection each, like separate worker processes
        barrier.wait()
        try:
            return normalize_delivery(spec, client=conn)
        finally:
            conn.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    assert sorted(r["status"] for r in results) == ["created"] + ["existing"] * 7
    assert len({r["signalId"] for r in results}) == 1
    assert signals_of(client)["total"] == 1 and issues_of(client)["total"] == 1


@pytest.mark.slow
def test_fifty_concurrent_posts_of_one_delivery_give_one_job_and_one_signal(client, rq_queue):
    body = fixture_bytes("github/issues.opened.json")
    headers = github_headers(body, "issues", "burst-1")
    barrier = threading.Barrier(50)

    def post(_: int) -> tuple[int, str]:
        barrier.wait()
        r = client.post("/api/signals/github", body=body, headers=headers, auth=False)
        return r.status_code, r.json["data"]["status"]

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(post, range(50)))
    assert {code for code, _ in results} == {202}
    assert sorted(status for _, status in results) == ["duplicate"] * 49 + ["queued"]
    assert rq_queue.count == 1
    drain(rq_queue)
    assert signals_of(client)["total"] == 1 and issues_of(client)["total"] == 1


def test_exhausted_retries_land_in_the_failed_registry_with_the_payload_and_can_be_requeued(client, store, rq_queue):
    body = fixture_bytes("github/issues.opened.json")
    client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", "poison-1"), auth=False)
    (job_id,) = rq_queue.job_ids
    with mock.patch.object(Signals, "create", side_effect=RuntimeError("store rejected the write")):
        drain(rq_queue)
    failed = FailedJobRegistry(queue=rq_queue)
    assert failed.get_job_ids() == [job_id]
    job = rq_queue.fetch_job(job_id)
    assert job.is_failed and job.retries_left == 0
    assert job.args[0]["body"].encode() == body  # the delivery is preserved for the operator
    assert "store rejected the write" in job.latest_result().exc_string
    assert signals_of(client)["total"] == 0 and issues_of(client)["total"] == 0
    # The marker stays: a provider redelivery is still a duplicate while the job waits in "failed".
    r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", "poison-1"), auth=False)
    assert r.json["data"]["status"] == "duplicate"
    failed.requeue(job_id)
    drain(rq_queue)
    assert len(failed) == 0
    assert signals_of(client)["total"] == 1 and issues_of(client)["total"] == 1


def test_webhook_issues_stay_in_triage_when_promotion_is_off(store, settings, clock, rq_queue):
    from api.app import create_app
    from loop.runtime import build
    from tests.conftest import Client

    off = dataclasses.replace(settings, promote_signals_to_todo=False)
    client = Client(create_app(build(store.r, off, clock), clock, off))
    post_github(client, "issues.opened", "issues", "triage-1")
    drain(rq_queue)
    assert [i["status"] for i in issues_of(client)["data"]] == ["triage"]
