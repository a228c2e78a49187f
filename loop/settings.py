"""Settings, read from the environment once at start-up.

Every variable is documented in the README's configuration table. Invalid values raise
:class:`loop.errors.ConfigError` naming the variable, so a misconfigured process fails at
start instead of at the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from loop import connection
from loop.errors import ConfigError
from loop.logs import LOG_FORMATS

DEFAULT_PORT = 5667
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DAY = 24 * 3600
#: Longest retention a setting accepts (ten years); 0 means keep forever.
MAX_RETENTION_SECONDS = 3650 * DAY
#: GitHub sends payloads up to 25 MB and never retries a 413, so webhook routes get their own limit.
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 25 * 1024 * 1024
#: The reference dashboard's origins (contract 0.6): local dev server and the hosted app.
DEFAULT_CORS_ORIGINS = ("http://localhost:5668", "https://app.looped.me")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _secrets(value: str | None) -> tuple[str, ...]:
    """Comma-separated secrets (several at once allow rotation)."""
    if not value:
        return ()
    return tuple(s.strip() for s in value.split(",") if s.strip())


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """Integer variable ``name`` in ``[lo, hi]`` (unset or blank: ``default``); else ConfigError naming it."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _seconds_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated delays in seconds (webhook job retry backoff), 1-25 of them."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        values = tuple(int(v) for v in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated integers (seconds), got {raw!r}") from None
    if not 1 <= len(values) <= 25 or any(not 0 <= v <= 86400 for v in values):
        raise ConfigError(f"{name} must list 1 to 25 delays between 0 and 86400 seconds, got {raw!r}")
    return values


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _origins(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated browser origins (``scheme://host[:port]``); ``none`` allows no origin."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if raw.lower() == "none":
        return ()
    origins = tuple(o.strip() for o in raw.split(",") if o.strip())
    for origin in origins:
        parsed = urlparse(origin)
        # An Origin header is exactly scheme://host[:port]: anything more would never match.
        if parsed.scheme not in ("http", "https") or not parsed.netloc or origin != f"{parsed.scheme}://{parsed.netloc}":
            raise ConfigError(f"{name} must list origins like https://app.example.com (no path), got {origin!r}")
    return origins


def _url(env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name) or default
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise ConfigError(f"{name} must be a URL with scheme {' or '.join(schemes)}, got {raw!r}")
    return raw


def _redis_urls(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``REDIS_URL`` (one Redis, a cluster or a Sentinel master) and ``LOOP_QUEUE_URL`` (RQ's Redis:
    one Redis or a Sentinel master; required with a cluster, else it defaults to ``REDIS_URL``)."""
    urls: dict[str, str | None] = {}
    for name in ("REDIS_URL", "LOOP_QUEUE_URL"):
        raw = (env.get(name) or "").strip() or None
        if raw is not None:
            try:
                connection.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} is invalid: {exc}") from None
        urls[name] = raw
    data, queue = urls["REDIS_URL"], urls["LOOP_QUEUE_URL"]
    if connection.is_cluster(queue):
        raise ConfigError("LOOP_QUEUE_URL cannot be a Redis Cluster: RQ needs one Redis (redis:// or redis+sentinel://)")
    if connection.is_cluster(data) and queue is None:
        raise ConfigError("LOOP_QUEUE_URL is required when REDIS_URL is a Redis Cluster: RQ needs one Redis")
    return data, queue


@dataclass(frozen=True)
class Settings:
    """Loop's configuration. Build with :meth:`from_env`; tests construct it directly."""

    api_key: str = "loop-dev-api-key-insecure"
    redis_url: str | None = None
    #: ``LOOP_WAIT_REPLICAS``: replicas that must confirm an acknowledged write (Redis ``WAIT``); 0: none.
    wait_replicas: int = 0
    #: RQ's Redis (``LOOP_QUEUE_URL``); ``None``: the data Redis itself (not allowed with a cluster).
    queue_url: str | None = None
    loop_url: str = f"http://localhost:{DEFAULT_PORT}"
    port: int = DEFAULT_PORT
    namespace: str = "loop"
    #: ``LOOP_NAMESPACES``: the namespaces a worker pool sweeps and maintains (empty: ``namespace`` only).
    namespaces: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    webhook_max_body_bytes: int = DEFAULT_WEBHOOK_MAX_BODY_BYTES
    github_webhook_secrets: tuple[str, ...] = ()
    sentry_client_secrets: tuple[str, ...] = ()
    posthog_webhook_secrets: tuple[str, ...] = ()
    promote_signals_to_todo: bool = True
    lease_seconds: int = 900
    max_lease_expiries: int = 3
    #: A claim that keeps losing races gives up (409) after this long instead of holding a worker.
    claim_timeout_ms: int = 2000
    prompt_token_placeholder: str = "$LOOP_API_KEY"
    queue_name: str = "loop-signals"
    webhook_dedup_seconds: int = 7 * 24 * 3600
    webhook_retry_intervals: tuple[int, ...] = (10, 30, 120, 600, 1800)
    failed_job_ttl: int = 30 * 24 * 3600
    # Retention (workers/retention.py); 0 keeps forever.
    session_retention_seconds: int = 90 * DAY
    deleted_issue_retention_seconds: int = 30 * DAY
    signal_payload_retention_seconds: int = 90 * DAY
    cors_origins: tuple[str, ...] = field(default=DEFAULT_CORS_ORIGINS)
    #: ``text`` (readable) or ``json`` (one object per line): loop/logs.py.
    log_format: str = "text"
    #: ``GET /metrics`` without an API key (a scraper on a private network); keyed by default.
    metrics_public: bool = False
    #: Ended sessions each version needs before Loop decides a prompt experiment (docs/prompts.md).
    experiment_min_sessions: int = 30

    @property
    def served_namespaces(self) -> tuple[str, ...]:
        """What this process's periodic jobs (lease sweeps, retention, outbox relay) run for."""
        return self.namespaces or (self.namespace,)

    @property
    def separate_queue(self) -> bool:
        """RQ's queue lives on another Redis than the data (webhooks go through the outbox)."""
        return self.queue_url is not None and self.queue_url != self.redis_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api_key = env.get("LOOP_API_KEY", "")
        if not api_key.strip():
            raise ConfigError("LOOP_API_KEY must be set to a non-empty secret (the bootstrap API key)")
        namespace = env.get("LOOP_NAMESPACE") or "loop"
        if not _NAMESPACE_RE.match(namespace):
            raise ConfigError(
                f"LOOP_NAMESPACE must be 1-64 characters of letters, digits, '_', '.', '-', got {namespace!r}"
            )
        namespaces = tuple(n.strip() for n in (env.get("LOOP_NAMESPACES") or "").split(",") if n.strip())
        for name in namespaces:
            if not _NAMESPACE_RE.match(name):
                raise ConfigError(f"LOOP_NAMESPACES must list namespaces of 1-64 characters of letters, digits, "
                                  f"'_', '.', '-', got {name!r}")
        port = env_int(env, "PORT", DEFAULT_PORT, 1, 65535)
        redis_url, queue_url = _redis_urls(env)
        return cls(
            api_key=api_key,
            redis_url=redis_url,
            queue_url=queue_url,
            wait_replicas=env_int(env, "LOOP_WAIT_REPLICAS", 0, 0, 16),
            loop_url=_url(env, "LOOP_URL", f"http://localhost:{port}", ("http", "https")) or "",
            port=port,
            namespace=namespace,
            namespaces=tuple(dict.fromkeys(namespaces)),
            max_body_bytes=env_int(env, "LOOP_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 64 * 1024 * 1024),
            webhook_max_body_bytes=env_int(env, "LOOP_WEBHOOK_MAX_BODY_BYTES", DEFAULT_WEBHOOK_MAX_BODY_BYTES,
                                        1024, 256 * 1024 * 1024),
            github_webhook_secrets=_secrets(env.get("GITHUB_WEBHOOK_SECRET")),
            sentry_client_secrets=_secrets(env.get("SENTRY_CLIENT_SECRET")),
            posthog_webhook_secrets=_secrets(env.get("POSTHOG_WEBHOOK_SECRET")),
            promote_signals_to_todo=_bool(env, "LOOP_SIGNALS_TO_TODO", True),
            lease_seconds=env_int(env, "LOOP_LEASE_SECONDS", 900, 5, 7 * 24 * 3600),
            max_lease_expiries=env_int(env, "LOOP_MAX_LEASE_EXPIRIES", 3, 1, 1000),
            claim_timeout_ms=env_int(env, "LOOP_CLAIM_TIMEOUT_MS", 2000, 50, 60_000),
            prompt_token_placeholder=env.get("LOOP_PROMPT_TOKEN", "$LOOP_API_KEY") or "$LOOP_API_KEY",
            queue_name=env.get("LOOP_QUEUE", "loop-signals") or "loop-signals",
            webhook_dedup_seconds=env_int(env, "LOOP_WEBHOOK_DEDUP_SECONDS", 7 * 24 * 3600, 7 * 24 * 3600, 366 * 24 * 3600),
            webhook_retry_intervals=_seconds_list(env, "LOOP_WEBHOOK_RETRY_INTERVALS", (10, 30, 120, 600, 1800)),
            failed_job_ttl=env_int(env, "LOOP_FAILED_JOB_TTL", 30 * 24 * 3600, 3600, 366 * 24 * 3600),
            session_retention_seconds=env_int(
                env, "LOOP_SESSION_RETENTION_SECONDS", 90 * DAY, 0, MAX_RETENTION_SECONDS),
            deleted_issue_retention_seconds=env_int(
                env, "LOOP_DELETED_ISSUE_RETENTION_SECONDS", 30 * DAY, 0, MAX_RETENTION_SECONDS),
            signal_payload_retention_seconds=env_int(
                env, "LOOP_SIGNAL_PAYLOAD_RETENTION_SECONDS", 90 * DAY, 0, MAX_RETENTION_SECONDS),
            cors_origins=_origins(env, "LOOP_CORS_ORIGINS", DEFAULT_CORS_ORIGINS),
            log_format=_choice(env, "LOOP_LOG_FORMAT", "text", LOG_FORMATS),
            metrics_public=_bool(env, "LOOP_METRICS_PUBLIC", False),
            experiment_min_sessions=env_int(env, "LOOP_EXPERIMENT_MIN_SESSIONS", 30, 5, 100_000),
        )
