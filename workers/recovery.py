"""The worker's recovery tunables (one place) and its reconnect backoff.

Read from ``LOOP_WORKER_*`` environment variables at start (README, "Configuration");
tests construct :class:`Recovery` directly.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loop.settings import env_int

#: How often the scheduler thread moves due retries from the scheduled registry to the queue.
SCHEDULER_TICK_SECONDS = 1.0
#: TTL of the scheduler lock (refreshed every tick): a SIGKILLed worker's lock frees itself this fast
#: (RQ's own scheduler holds it 61 s and only retries every 10 minutes).
SCHEDULER_LOCK_SECONDS = 10
#: How often the RQ worker heartbeats a running job (RQ's ``job_monitoring_interval``).
JOB_HEARTBEAT_SECONDS = 5
#: First reconnect delay; doubled per failed attempt up to ``reconnect_max_seconds``.
RECONNECT_BASE_SECONDS = 0.25


@dataclass(frozen=True)
class Recovery:
    """How fast ``python -m workers`` notices and repairs what a crash left behind."""

    #: Seconds between maintenance ticks (started-registry and intermediate-list cleanup).
    maintenance_seconds: int = 5
    #: A started job whose worker stopped heartbeating this long, or a dequeued job that no
    #: worker started for this long, is retried.
    abandon_seconds: int = 30
    #: Upper bound of the reconnect backoff while Redis is unreachable.
    reconnect_max_seconds: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Recovery:
        env = os.environ if env is None else env
        return cls(
            maintenance_seconds=env_int(env, "LOOP_WORKER_MAINTENANCE_SECONDS", 5, 1, 600),
            abandon_seconds=env_int(env, "LOOP_WORKER_ABANDON_SECONDS", 30, 1, 3600),
            reconnect_max_seconds=env_int(env, "LOOP_WORKER_RECONNECT_MAX_SECONDS", 5, 1, 300),
        )

    @property
    def maintenance_lock_seconds(self) -> int:
        """TTL of the maintenance lock: a crashed holder blocks the others at most this long."""
        return max(10, 3 * self.maintenance_seconds)


def backoff(attempt: int, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Delay before reconnect ``attempt`` (1, 2, ...): exponential, capped, with full jitter
    in its upper half so a fleet of workers does not reconnect in lockstep."""
    ceiling = min(cap, RECONNECT_BASE_SECONDS * 2.0 ** min(max(attempt - 1, 0), 32))
    return ceiling / 2 + ceiling / 2 * jitter()
