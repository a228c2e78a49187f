"""Issue 10.3: a captured, signed delivery replayed with fresh (unsigned) delivery ids is one
signal: a byte-identical body accepted within LOOP_WEBHOOK_DEDUP_SECONDS is a duplicate, checked
in the same atomic accept step as the delivery-id dedup. Real Redis and a real RQ worker."""

from __future__ import annotations

import pytest

from loop.signals.intake import body_digest
from tests.conftest import keys_of
from tests.fixtures.webhooks import (
    drain,
    fixture_bytes,
    github_headers,
    job_ids_of_markers,
    open_queue,
    posthog_headers,
    sentry_headers,
)

ISSUE_BODY = fixture_bytes("github/issues.opened.json")
SENTRY_BODY = fixture_bytes("sentry/issue.created.json")
POSTHOG_BODY = fixture_bytes("posthog/exception.json")


@pytest.fixture
def rq_queue(settings):
    yield from open_queue(settings)


def gh(client, body: bytes, delivery: str) -> str:
    r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", delivery), auth=False)
    assert r.status_code == 202, r.text
    assert r.json["data"]["deliveryId"] == delivery
    return str(r.json["data"]["status"])


def signal_count(client) -> int:
    return int(client.get("/api/signals").json["total"])


def test_the_same_signed_github_body_with_fresh_delivery_ids_gives_one_signal(client, store, rq_queue):
    assert [gh(client, ISSUE_BODY, f"fresh-{i}") for i in range(4)] == ["queued"] + ["duplicate"] * 3
    assert rq_queue.count == 1
    drain(rq_queue)
    assert signal_count(client) == 1


def test_a_different_body_with_a_fresh_delivery_id_gives_a_second_signal(client, rq_queue):
    other = ISSUE_BODY.replace(b'"opened"', b'"edited"', 1)
    assert other != ISSUE_BODY
    assert [gh(client, ISSUE_BODY, "a"), gh(client, other, "b")] == ["queued", "queued"]
    drain(rq_queue)
    assert signal_count(client) == 2


def test_a_replayed_body_leaves_no_job_and_no_marker_behind(client, store, rq_queue):
    gh(client, ISSUE_BODY, "first")
    before = keys_of(store), rq_queue.job_ids
    assert gh(client, ISSUE_BODY, "replayed") == "duplicate"
    assert (keys_of(store), rq_queue.job_ids) == before
    assert len(job_ids_of_markers(store.r, store)) == 1


def test_the_body_window_is_the_dedup_ttl_and_after_it_the_body_is_accepted_again(client, store, settings, rq_queue):
    gh(client, ISSUE_BODY, "w-1")
    body_marker = store.keys.webhook_body("github", body_digest(ISSUE_BODY))
    ttl = settings.webhook_dedup_seconds
    assert ttl - 5 <= store.r.ttl(body_marker) <= ttl
    (marker,) = job_ids_of_markers(store.r, store)
    assert ttl - 5 <= store.r.ttl(marker) <= ttl
    store.r.delete(body_marker, marker)  # what the window's end does (both TTLs run out)
    assert gh(client, ISSUE_BODY, "w-2") == "queued"
    drain(rq_queue)
    assert signal_count(client) == 2


def test_a_sentry_body_replayed_under_another_resource_header_is_a_duplicate(client, rq_queue):
    statuses = []
    for resource in ("issue", "error", "event_alert"):
        r = client.post("/api/signals/sentry", body=SENTRY_BODY, headers=sentry_headers(SENTRY_BODY, resource),
                        auth=False)
        statuses.append(r.json["data"]["status"])
    assert statuses == ["queued", "duplicate", "duplicate"]
    assert rq_queue.count == 1


def test_the_same_posthog_body_twice_is_one_job(client, rq_queue):
    statuses = [client.post("/api/signals/posthog", body=POSTHOG_BODY, headers=posthog_headers(),
                            auth=False).json["data"]["status"] for _ in range(2)]
    assert statuses == ["queued", "duplicate"] and rq_queue.count == 1


def test_bodies_are_windowed_per_provider(client, store, rq_queue):
    assert store.keys.webhook_body("github", "d") != store.keys.webhook_body("sentry", "d")
    assert not store.keys.webhook_body("github", "d").startswith(store.keys.webhook_delivery("github", ""))
