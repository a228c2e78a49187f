"""Process wiring: settings -> Redis client -> store. Used by gunicorn, workers, the CLI."""

from __future__ import annotations

from loop.clock import SystemClock
from loop.errors import ConfigError
from loop.settings import Settings
from loop.store import RedisStore, connect

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def store_from_settings(settings: Settings) -> RedisStore:
    url = settings.redis_url or DEFAULT_REDIS_URL
    try:
        client = connect(url, socket_timeout=5, socket_connect_timeout=5)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is invalid: {exc}") from None
    return RedisStore(client, settings, SystemClock())
