"""Process wiring: settings -> Redis client -> store. Used by gunicorn, workers, the CLI."""

from __future__ import annotations

from loop.clock import SystemClock
from loop.errors import ConfigError
from loop.settings import Settings
from loop.store import RedisStore, connect
from loop.tunables import REDIS_TIMEOUT_SECONDS

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def store_from_settings(settings: Settings) -> RedisStore:
    """The process's store. The first call per Redis URL also logs the Redis configuration
    warnings of :func:`loop.health.check_redis_config` (eviction policy, persistence)."""
    from loop.health import check_redis_config_once

    url = settings.redis_url or DEFAULT_REDIS_URL
    try:
        # Both timeouts bound a request behind a silent Redis (timeouts are not retried).
        client = connect(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is invalid: {exc}") from None
    check_redis_config_once(client, url)
    return RedisStore(client, settings, SystemClock())
