"""``GET /metrics``: Prometheus text, scraped and parsed; counters at the edges, O(1) backlog gauges."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.client import Pipeline

from api.app import create_app
from tests.conftest import Client
from tests.fixtures.webhooks import fixture_bytes, github_headers, open_queue
from tests.wire import sent_alone

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TODO = {"title": "t", "type": "task", "status": "todo"}


@pytest.fixture
def rq_queue(settings: Any) -> Iterator[Any]:
    yield from open_queue(settings)


def scrape(client: Client) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_the_api_key_unless_loop_metrics_public_is_set(store, clock, settings):
    keyed = Client(create_app(store, clock, settings))
    assert keyed.get("/metrics", auth=False).status_code == 401
    public = Client(create_app(store, clock, dataclasses.replace(settings, metrics_public=True)))
    r = public.get("/metrics", auth=False)
    assert r.status_code == 200 and "loop_http_requests_total" in r.text


def test_requests_are_counted_by_route_template_method_and_status_with_a_latency_histogram(client):
    before = scrape(client)
    assert client.get("/api/issues").status_code == 200
    assert client.get("/api/issues/nope").status_code == 404
    after = scrape(client)
    for route, status in (("/api/issues", "200"), ("/api/issues/{issue_id}", "404")):
        labels = {"route": route, "method": "GET", "status": status}
        assert value(after, "loop_http_requests_total", **labels) == value(before, "loop_http_requests_total",
                                                                            **labels) + 1
    count = "loop_http_request_duration_seconds_count"
    assert value(after, count, route="/api/issues", method="GET") == value(
        before, count, route="/api/issues", method="GET") + 1


def test_claims_empty_polls_and_released_sessions_are_counted(client):
    before = scrape(client)
    assert client.get("/api/dispatch/next").status_code == 204
    client.post("/api/issues", json=TODO)
    claim = client.get("/api/dispatch/next").json["claim"]
    r = client.post(f"/api/dispatch/claims/{claim['sessionId']}/release", json={"token": claim["token"]})
    assert r.status_code == 200, r.text
    after = scrape(client)
    assert value(after, "loop_dispatch_empty_polls_total") == value(before, "loop_dispatch_empty_polls_total") + 1
    assert value(after, "loop_dispatch_claims_total") == value(before, "loop_dispatch_claims_total") + 1
    assert value(after, "loop_sessions_closed_total", outcome="released") == value(
        before, "loop_sessions_closed_total", outcome="released") + 1
    nxt = client.get("/api/dispatch/next").json  # the released issue, back in the queue
    claim = nxt["claim"]
    done = client.patch(f"/api/issues/{nxt['issue']['id']}", json={"status": "done"},
                        headers={"X-Loop-Claim-Token": claim["token"]})
    assert done.status_code == 200, done.text
    assert value(scrape(client), "loop_sessions_closed_total", outcome="completed") == value(
        before, "loop_sessions_closed_total", outcome="completed") + 1


def test_webhook_deliveries_are_counted_by_provider_and_outcome(client, rq_queue):
    body = fixture_bytes("github/issues.opened.json")
    before = scrape(client)
    for headers in (github_headers(body, "issues", "m-1"), github_headers(body, "issues", "m-1"),
                    {**github_headers(body, "issues", "m-2"), "X-Hub-Signature-256": "sha256=00"}):
        client.post("/api/signals/github", body=body, headers=headers, auth=False)
    after = scrape(client)
    for outcome in ("queued", "duplicate", "rejected"):
        name = "loop_webhook_deliveries_total"
        assert value(after, name, provider="github", outcome=outcome) == value(
            before, name, provider="github", outcome=outcome) + 1, outcome


def test_backlog_gauges_read_redis_at_scrape_time(client, clock, rq_queue):
    for _ in range(3):
        client.post("/api/issues", json=TODO)
    body = fixture_bytes("github/issues.opened.json")
    client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", "g-1"), auth=False)
    samples = scrape(client)
    assert value(samples, "loop_redis_up") == 1
    assert value(samples, "loop_dispatch_ready_issues") == 3
    assert value(samples, "loop_webhook_queue_depth") == 1
    assert value(samples, "loop_webhook_queue_oldest_age_seconds") >= 0
    assert value(samples, "loop_parked_issues") == 0
    assert value(samples, "loop_workers_live") == 0
    assert value(samples, "loop_lease_sweep_age_seconds") == -1


def count_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent = sent_alone(monkeypatch)  # direct commands and script calls
    piped = Pipeline.pipeline_execute_command

    def queue(self: Any, *args: Any, **kw: Any) -> Any:
        sent.append(str(args[0]))
        return piped(self, *args, **kw)

    monkeypatch.setattr(Pipeline, "pipeline_execute_command", queue)
    return sent


def test_a_scrape_sends_the_same_redis_commands_whatever_the_backlog(client, monkeypatch):
    client.post("/api/issues", json=TODO)
    sent = count_commands(monkeypatch)
    scrape(client)
    small = list(sent)
    monkeypatch.undo()
    for _ in range(40):
        client.post("/api/issues", json=TODO)
    sent = count_commands(monkeypatch)
    scrape(client)
    assert sent == small and len(small) < 30


def test_a_worker_job_records_its_outcome_and_duration(client):
    from workers.signals import normalize_delivery

    before = scrape(client)
    with pytest.raises(KeyError):
        normalize_delivery({"provider": "nope", "deliveryId": "x", "namespace": "n", "promote": True,
                            "body": "{}"}, client=redis.Redis())
    after = scrape(client)
    labels = {"job": "normalize_delivery", "outcome": "error"}
    assert value(after, "loop_jobs_total", **labels) == value(before, "loop_jobs_total", **labels) + 1
    count = "loop_job_duration_seconds_count"
    assert value(after, count, job="normalize_delivery") == value(before, count, job="normalize_delivery") + 1


def test_loop_dev_gives_each_run_an_empty_multiprocess_directory_unless_the_operator_set_one(tmp_path):
    from loop.devserver import METRICS_ENV, metrics_dir

    stale = tmp_path / "metrics" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old run")
    env = metrics_dir(tmp_path, {})
    assert env == {METRICS_ENV: str(tmp_path / "metrics")} and not any((tmp_path / "metrics").iterdir())
    assert metrics_dir(tmp_path, {METRICS_ENV: "/elsewhere"}) == {}
