"""The composition root: the one place that builds Loop's object graph.

:class:`Loop` is the store (every domain service of :class:`~loop.store.RedisStore`) plus the
subsystems above it, as real typed attributes: ``dispatch``, ``signals`` and ``prompts``. Subsystems receive what they need as constructor
arguments, and the hooks they run inside store writes are registered here, in order. The API
(``api.app.create_app``), the workers, the CLI, the MCP server, the dev server and the benchmarks
all build through :func:`build` or :func:`from_settings`; the store package imports nothing of
this module nor of the subsystems.
"""

from __future__ import annotations

import functools

import redis

from loop.clock import Clock, SystemClock
from loop.connection import AnyRedis
from loop.dispatch import Dispatch, DispatchIssueHook, DispatchRelationHook
from loop.dispatch import audit as dispatch_audit
from loop.errors import ConfigError
from loop.prompts.service import PromptService
from loop.settings import Settings
from loop.store import RedisStore, connect, reindex
from loop.store.base import DEFAULT_REDIS_URL
from loop.store.daystats import DayStatsHook
from loop.store.outcomes import OutcomeHook
from loop.store.signals import Signals
from loop.tunables import REDIS_TIMEOUT_SECONDS

__all__ = ["DEFAULT_REDIS_URL", "Loop", "build", "from_settings", "store_from_settings"]


class Loop(RedisStore):
    """The store with dispatch, signals and the prompt engine.

    ``prompts=False``: dispatch renders no prompt (a claim carries the issue and the claim only);
    the prompt engine still serves its own API."""

    def __init__(self, client: AnyRedis, settings: Settings | None = None, clock: Clock | None = None,
                 *, prompts: bool = True) -> None:
        super().__init__(client, settings, clock)
        self.signals = Signals(self)
        self.prompts = PromptService(self, dispatch=True)
        self.dispatch = Dispatch(self, self.prompts if prompts else None)
        # Order matters: the delivery guard WATCHes before any other hook reads.
        # The outcome hook last: it stages the verified hypothesis's update and the new signal's
        # issue through the same hooks, inside the monitor's transaction.
        self.issue_hooks.extend([self.signals.guard_hook, DispatchIssueHook(self.dispatch.index),
                                 DayStatsHook(self.keys),  # the overview's per-day/hour counters
                                 OutcomeHook(self, self.signals)])
        self.relations.hooks.append(DispatchRelationHook(self.dispatch.index))
        self.dispatch.goals.install()  # goal and project row hooks (goal bonuses)
        self.audits.append(reindex.Extension(dispatch_audit.expect, dispatch_audit.audit_sessions))


def build(client: AnyRedis, settings: Settings | None = None, clock: Clock | None = None,
          *, prompts: bool = True) -> Loop:
    """The object graph over ``client`` (``prompts=False``: claims come without a prompt)."""
    return Loop(client, settings, clock, prompts=prompts)


def from_settings(settings: Settings) -> Loop:
    """The process's graph. The first call per Redis URL also logs the Redis configuration
    warnings of :func:`loop.health.check_redis_config` (eviction policy, persistence)."""
    from loop.health import check_redis_config_once

    url = settings.redis_url or DEFAULT_REDIS_URL
    try:
        # Both timeouts bound a request behind a silent Redis (timeouts are not retried).
        client = connect(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is invalid: {exc}") from None
    except redis.ConnectionError as exc:
        raise ConfigError(f"REDIS_URL does not answer: {exc}") from None
    check_redis_config_once(client, url)
    return build(client, settings, process_clock(settings))


def process_clock(settings: Settings) -> Clock:
    """The clock of a server or worker process: the system's. A seam (looked up at each call): the
    end-to-end test's processes replace it with a clock they can move (tests/offset_clock.py)."""
    return SystemClock()


#: The former name of :func:`from_settings`.
store_from_settings = from_settings


@functools.cache
def process_store(settings: Settings) -> Loop:
    """One graph per settings for the life of the process (the worker's periodic jobs share it)."""
    return from_settings(settings)
