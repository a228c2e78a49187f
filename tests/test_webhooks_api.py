"""Webhook intake: Bearer exemption, signature matrix, secrets, dedup, enqueue, 413/400/500."""

from __future__ import annotations

import dataclasses
import json

import pytest
from rq.job import Job

from api.app import create_app
from loop.runtime import build
from tests.conftest import Client, keys_of
from tests.fixtures.webhooks import (
    fixture_bytes,
    github_headers,
    github_signature,
    job_ids_of_markers,
    open_queue,
    posthog_headers,
    sentry_headers,
    sentry_signature,
)

ISSUE_BODY = fixture_bytes("github/issues.opened.json")


@pytest.fixture
def rq_queue(settings):
    yield from open_queue(settings)


def gh(client, body=ISSUE_BODY, event="issues", delivery="d-1", **kw):
    headers = {**github_headers(body, event, delivery), **kw.pop("headers", {})}
    return client.post("/api/signals/github", body=body, headers=headers, auth=False, **kw)


def assert_nothing_stored(store, rq_queue, before):
    assert keys_of(store) == before
    assert rq_queue.count == 0
    assert not rq_queue.connection.exists(rq_queue.key)


def test_a_signed_github_delivery_is_queued_without_a_bearer_key(client, store, rq_queue):
    r = gh(client)
    assert r.status_code == 202, r.text
    assert r.json == {"data": {"deliveryId": "d-1", "status": "queued"}}
    assert rq_queue.count == 1
    job = rq_queue.jobs[0]
    assert job.func_name == "workers.signals.normalize_delivery"
    spec = job.args[0]
    assert (spec["provider"], spec["deliveryId"], spec["meta"], spec["namespace"]) == (
        "github", "d-1", {"event": "issues"}, store.keys.namespace)
    assert spec["body"].encode() == ISSUE_BODY
    assert "gh-secret" not in json.dumps(spec)


def test_the_job_is_enqueued_with_retries_backoff_and_bounded_ttls(client, settings, rq_queue):
    gh(client)
    job = rq_queue.jobs[0]
    assert job.retries_left == len(settings.webhook_retry_intervals)
    assert job.retry_intervals == list(settings.webhook_retry_intervals)
    assert job.failure_ttl == settings.failed_job_ttl
    assert job.result_ttl is not None and 0 < job.result_ttl <= 7 * 24 * 3600
    assert job.timeout is not None


def test_a_redelivery_is_a_duplicate_and_enqueues_nothing_more(client, store, rq_queue):
    assert gh(client).json["data"]["status"] == "queued"
    r = gh(client)
    assert r.status_code == 202 and r.json == {"data": {"deliveryId": "d-1", "status": "duplicate"}}
    assert rq_queue.count == 1
    edited = ISSUE_BODY.replace(b'"opened"', b'"edited"', 1)
    assert gh(client, body=edited, delivery="d-2").json["data"]["status"] == "queued"
    assert rq_queue.count == 2


def test_the_dedup_marker_names_the_job_and_lives_at_least_seven_days(client, store, rq_queue):
    gh(client)
    markers = job_ids_of_markers(store.r, store)
    assert len(markers) == 1
    (key, job_id), = markers.items()
    assert job_id == rq_queue.job_ids[0]
    assert store.r.ttl(key) >= 7 * 24 * 3600 - 5


def test_a_github_ping_is_answered_and_creates_nothing(client, store, rq_queue):
    before = keys_of(store)
    body = fixture_bytes("github/ping.json")
    r = gh(client, body=body, event="ping", delivery="p-1")
    assert r.status_code == 200
    assert r.json == {"data": {"deliveryId": "p-1", "status": "ignored"}}
    assert_nothing_stored(store, rq_queue, before)


# ------------------------------------------------------------------ the signature matrix
def _tampered(body: bytes) -> bytes:
    return body.replace(b"Spelling error", b"Spelling errer")


def _reserialised(body: bytes) -> bytes:
    return json.dumps(json.loads(body), separators=(",", ":")).encode()


GITHUB_REJECTIONS = {
    "tampered body": lambda h, b: (h, _tampered(b)),
    "wrong secret": lambda h, b: ({**h, "X-Hub-Signature-256": github_signature(b, "other")}, b),
    "missing header": lambda h, b: ({k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, b),
    "wrong prefix": lambda h, b: ({**h, "X-Hub-Signature-256": h["X-Hub-Signature-256"].replace("sha256=", "sha1=")}, b),
    "bare hex": lambda h, b: ({**h, "X-Hub-Signature-256": h["X-Hub-Signature-256"][7:]}, b),
    "truncated hex": lambda h, b: ({**h, "X-Hub-Signature-256": h["X-Hub-Signature-256"][:-2]}, b),
    "uppercase hex": lambda h, b: ({**h, "X-Hub-Signature-256": "sha256=" + h["X-Hub-Signature-256"][7:].upper()}, b),
    "re-serialised JSON": lambda h, b: (h, _reserialised(b)),
    "empty signature": lambda h, b: ({**h, "X-Hub-Signature-256": ""}, b),
}


@pytest.mark.parametrize("case", list(GITHUB_REJECTIONS))
def test_every_bad_github_signature_is_401_and_stores_and_enqueues_nothing(client, store, rq_queue, case):
    before = keys_of(store)
    headers, body = GITHUB_REJECTIONS[case](github_headers(ISSUE_BODY, "issues", "d-1"), ISSUE_BODY)
    r = client.post("/api/signals/github", body=body, headers=headers, auth=False)
    assert r.status_code == 401
    expected = "Missing X-Hub-Signature-256 header" if case in ("missing header", "empty signature") \
        else "Invalid webhook signature"
    assert r.json == {"error": expected}
    assert_nothing_stored(store, rq_queue, before)


SENTRY_BODY = fixture_bytes("sentry/issue.created.json")
SENTRY_REJECTIONS = {
    "tampered body": lambda h, b: (h, b.replace(b"Checkout", b"Checkin")),
    "wrong secret": lambda h, b: ({**h, "Sentry-Hook-Signature": sentry_signature(b, "other")}, b),
    "missing header": lambda h, b: ({k: v for k, v in h.items() if k != "Sentry-Hook-Signature"}, b),
    "wrong prefix": lambda h, b: ({**h, "Sentry-Hook-Signature": "sha256=" + h["Sentry-Hook-Signature"]}, b),
    "truncated hex": lambda h, b: ({**h, "Sentry-Hook-Signature": h["Sentry-Hook-Signature"][:40]}, b),
    "re-serialised JSON": lambda h, b: (h, _reserialised(b)),
}


@pytest.mark.parametrize("case", list(SENTRY_REJECTIONS))
def test_every_bad_sentry_signature_is_401_and_stores_and_enqueues_nothing(client, store, rq_queue, case):
    before = keys_of(store)
    headers, body = SENTRY_REJECTIONS[case](sentry_headers(SENTRY_BODY, "issue"), SENTRY_BODY)
    r = client.post("/api/signals/sentry", body=body, headers=headers, auth=False)
    assert r.status_code == 401
    assert r.json["error"] == ("Missing Sentry-Hook-Signature header" if case == "missing header"
                               else "Invalid webhook signature")
    assert_nothing_stored(store, rq_queue, before)


POSTHOG_BODY = fixture_bytes("posthog/insight_alert_firing.json")


@pytest.mark.parametrize("headers, error", [
    ({}, "Missing X-PostHog-Secret header"),
    ({"X-PostHog-Secret": "wrong"}, "Invalid webhook secret"),
    ({"X-PostHog-Secret": "posthog-secre"}, "Invalid webhook secret"),
    ({"Authorization": "Bearer wrong"}, "Invalid webhook secret"),
    ({"Authorization": "Basic posthog-secret"}, "Missing X-PostHog-Secret header"),
])
def test_a_bad_posthog_secret_is_401_and_stores_and_enqueues_nothing(client, store, rq_queue, headers, error):
    before = keys_of(store)
    r = client.post("/api/signals/posthog", body=POSTHOG_BODY,
                    headers={"Content-Type": "application/json", **headers}, auth=False)
    assert r.status_code == 401 and r.json == {"error": error}
    assert_nothing_stored(store, rq_queue, before)


def test_valid_sentry_and_posthog_deliveries_are_queued(client, rq_queue):
    r = client.post("/api/signals/sentry", body=SENTRY_BODY, headers=sentry_headers(SENTRY_BODY, "issue"), auth=False)
    assert r.status_code == 202
    assert r.json["data"] == {"deliveryId": "issue:1170820242:created:2026-02-20T11:58:43.000000Z", "status": "queued"}
    r = client.post("/api/signals/posthog", body=POSTHOG_BODY, headers=posthog_headers(), auth=False)
    assert r.json["data"] == {"deliveryId": "01953a6e-8f51-7a7e-9a9b-2f1f0c3c4d5e", "status": "queued"}
    r = client.post("/api/signals/posthog", body=POSTHOG_BODY, auth=False,
                    headers={"Content-Type": "application/json", "Authorization": "Bearer posthog-secret"})
    assert r.json["data"]["status"] == "duplicate"
    assert rq_queue.count == 2


def test_sentry_redeliveries_dedupe_on_the_resource_even_with_a_new_request_id(client, rq_queue):
    h = sentry_headers(SENTRY_BODY, "issue")
    assert client.post("/api/signals/sentry", body=SENTRY_BODY, headers=h, auth=False).json["data"]["status"] == "queued"
    h2 = {**h, "Request-ID": "req-2"}
    assert client.post("/api/signals/sentry", body=SENTRY_BODY, headers=h2, auth=False).json["data"]["status"] == "duplicate"
    resolved = SENTRY_BODY.replace(b'"action": "created"', b'"action": "resolved"')
    r = client.post("/api/signals/sentry", body=resolved, headers=sentry_headers(resolved, "issue"), auth=False)
    assert r.json["data"]["status"] == "queued"
    assert rq_queue.count == 2


def test_posthog_bodies_without_a_uuid_dedupe_on_the_body_hash(client, rq_queue):
    body = fixture_bytes("posthog/metric_change.json")
    first = client.post("/api/signals/posthog", body=body, headers=posthog_headers(), auth=False).json["data"]
    again = client.post("/api/signals/posthog", body=body, headers=posthog_headers(), auth=False).json["data"]
    assert first["status"] == "queued" and again == {**first, "status": "duplicate"}
    assert first["deliveryId"].startswith("sha256:")
    other = body.replace(b"55", b"56")
    assert client.post("/api/signals/posthog", body=other, headers=posthog_headers(),
                       auth=False).json["data"]["status"] == "queued"


# ------------------------------------------------------------------ secrets
def app_with(store, settings, clock, **changes):
    s = dataclasses.replace(settings, **changes)
    return Client(create_app(build(store.r, s, clock), clock, s))


@pytest.mark.parametrize("path, attr, env", [
    ("github", "github_webhook_secrets", "GITHUB_WEBHOOK_SECRET"),
    ("sentry", "sentry_client_secrets", "SENTRY_CLIENT_SECRET"),
    ("posthog", "posthog_webhook_secrets", "POSTHOG_WEBHOOK_SECRET"),
])
def test_a_missing_secret_is_a_clear_500_never_a_silent_accept(store, settings, clock, rq_queue, path, attr, env):
    client = app_with(store, settings, clock, **{attr: ()})
    before = keys_of(store)
    headers = {**github_headers(ISSUE_BODY, "issues", "d-1"), **sentry_headers(ISSUE_BODY, "issue"),
               **posthog_headers()}
    r = client.post(f"/api/signals/{path}", body=ISSUE_BODY, headers=headers, auth=False)
    assert r.status_code == 500 and r.json == {"error": f"{env} not configured"}
    assert_nothing_stored(store, rq_queue, before)


def test_several_secrets_are_accepted_during_rotation(store, settings, clock, rq_queue):
    client = app_with(store, settings, clock, github_webhook_secrets=("old-secret", "new-secret"),
                      sentry_client_secrets=("s-old", "s-new"), posthog_webhook_secrets=("p-old", "p-new"))
    for i, secret in enumerate(("old-secret", "new-secret")):
        body = ISSUE_BODY.replace(b"{", b'{"rotation": %d, ' % i, 1)  # one body twice would be a replay
        r = client.post("/api/signals/github", body=body, auth=False,
                        headers=github_headers(body, "issues", f"rot-{i}", secret=secret))
        assert r.status_code == 202, r.text
    assert client.post("/api/signals/github", body=ISSUE_BODY, auth=False,
                       headers=github_headers(ISSUE_BODY, "issues", "rot-x", secret="gone")).status_code == 401
    assert client.post("/api/signals/sentry", body=SENTRY_BODY, auth=False,
                       headers=sentry_headers(SENTRY_BODY, "issue", secret="s-new")).status_code == 202
    assert client.post("/api/signals/posthog", body=POSTHOG_BODY, auth=False,
                       headers=posthog_headers("p-old")).status_code == 202
    assert rq_queue.count == 4


# ------------------------------------------------------------------ bodies
def test_a_body_over_the_limit_is_413_and_stores_nothing(store, clock, settings, rq_queue):
    small = dataclasses.replace(settings, webhook_max_body_bytes=settings.max_body_bytes)
    client = Client(create_app(store, clock, small))
    before = keys_of(store)
    big = b'{"pad": "' + b"x" * small.webhook_max_body_bytes + b'"}'
    r = gh(client, body=big)
    assert r.status_code == 413
    assert_nothing_stored(store, rq_queue, before)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_a_signed_body_that_is_not_a_json_object_is_400_and_stores_nothing(client, store, rq_queue, body):
    before = keys_of(store)
    r = gh(client, body=body)
    assert r.status_code == 400 and "error" in r.json
    assert_nothing_stored(store, rq_queue, before)


def test_webhooks_ignore_a_wrong_bearer_key_and_other_routes_still_require_one(client, rq_queue):
    headers = {**github_headers(ISSUE_BODY, "issues", "d-9"), "Authorization": "Bearer not-a-key"}
    assert client.post("/api/signals/github", body=ISSUE_BODY, headers=headers, auth=False).status_code == 202
    assert client.get("/api/signals", auth=False).status_code == 401
    assert client.get("/api/signals/github", auth=False).status_code == 405


def test_a_queued_job_can_be_fetched_by_the_id_in_the_marker(client, store, rq_queue):
    gh(client)
    (job_id,) = job_ids_of_markers(store.r, store).values()
    job = Job.fetch(job_id, connection=rq_queue.connection)
    assert job.meta == {"provider": "github", "deliveryId": "d-1", "namespace": store.keys.namespace}


def test_a_duplicate_leaves_no_job_behind(client, rq_queue, monkeypatch):
    import uuid

    first, dup = "job-first-" + uuid.uuid4().hex, "job-dup-" + uuid.uuid4().hex
    ids = iter([first, dup])
    monkeypatch.setattr("loop.signals.intake.uuid.uuid4", lambda: type("U", (), {"hex": next(ids)})())
    assert gh(client).json["data"]["status"] == "queued"
    assert gh(client).json["data"]["status"] == "duplicate"
    assert rq_queue.job_ids == [first]
    conn = rq_queue.connection
    assert conn.exists(f"rq:job:{first}") and not conn.exists(f"rq:job:{dup}")


def test_the_accept_script_keeps_a_job_whose_transaction_was_applied_twice(store, rq_queue):
    from loop.signals.intake import ACCEPT_SCRIPT

    conn = rq_queue.connection
    marker = store.keys.webhook_delivery("github", "retried")
    body_marker = store.keys.webhook_body("github", "retried-body")
    job_key = "rq:job:" + store.keys.namespace + "-retried"
    try:
        for _ in range(2):  # the same MULTI twice, as a blind client retry would
            pipe = conn.pipeline(transaction=True)
            pipe.hset(job_key, "status", "queued")
            pipe.rpush(rq_queue.key, "retried-job")
            pipe.eval(ACCEPT_SCRIPT, 4, marker, rq_queue.key, job_key, body_marker, "retried-job", 60)
            assert pipe.execute()[-1] == 1
        assert conn.lrange(rq_queue.key, 0, -1) == [b"retried-job"]
        assert conn.exists(job_key)
        pipe = conn.pipeline(transaction=True)
        pipe.hset(job_key + "-other", "status", "queued")
        pipe.rpush(rq_queue.key, "other-job")
        pipe.eval(ACCEPT_SCRIPT, 4, marker, rq_queue.key, job_key + "-other", body_marker, "other-job", 60)
        assert pipe.execute()[-1] == 0
        assert conn.lrange(rq_queue.key, 0, -1) == [b"retried-job"]
        assert not conn.exists(job_key + "-other")
    finally:
        conn.delete(job_key, job_key + "-other")
