"""Loop's Prometheus counters and histograms (one set per process; docs/operations.md, "Metrics").

Incremented where an outcome is known: the API's resources and request middleware, the worker's
jobs and sweeps. With ``PROMETHEUS_MULTIPROC_DIR`` set (several gunicorn workers, or the RQ
worker beside the API on one host) prometheus-client keeps each process's values in files there
and ``GET /metrics`` (:mod:`api.metrics`) merges them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from loop.redis_errors import unavailable_reason

#: Route label of a request no route served (keeps the label set bounded).
UNMATCHED = "<unmatched>"

REQUESTS = Counter("loop_http_requests", "HTTP requests by route template, method and status",
                   ["route", "method", "status"])
LATENCY = Histogram("loop_http_request_duration_seconds", "HTTP request latency by route template and method",
                    ["route", "method"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
CLAIMS = Counter("loop_dispatch_claims", "Issues claimed by GET /api/dispatch/next")
EMPTY_POLLS = Counter("loop_dispatch_empty_polls", "GET /api/dispatch/next answered 204 (nothing eligible)")
LEASE_EXPIRIES = Counter("loop_lease_expiries", "Leases expired by the worker's periodic sweep")
WEBHOOKS = Counter("loop_webhook_deliveries", "Webhook deliveries by provider and outcome "
                   "(queued, duplicate, ignored, rejected)", ["provider", "outcome"])
JOBS = Counter("loop_jobs", "Worker jobs run, by job and outcome (ok, error: RQ retries or fails it)",
               ["job", "outcome"])
JOB_DURATION = Histogram("loop_job_duration_seconds", "Worker job duration", ["job"],
                         buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
REDIS_ERRORS = Counter("loop_redis_errors", "Requests answered 503 because Redis could not serve, by reason",
                       ["reason"])


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    name = route or UNMATCHED
    REQUESTS.labels(name, method, str(status)).inc()
    LATENCY.labels(name, method).observe(seconds)


def redis_error(exc: Exception) -> None:
    REDIS_ERRORS.labels(unavailable_reason(exc) or type(exc).__name__).inc()
