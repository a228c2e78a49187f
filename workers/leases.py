"""Periodic lease expiry: requeue the issues of agents that stopped heartbeating; and the
scheduler tick: move scheduled issues that fell due into the ready sets.

The claim path also sweeps before claiming, so this job only matters for issues nobody is
claiming (they should show ``todo`` again in lists and the dashboard). It runs every
``LEASE_SWEEP_SECONDS`` in each worker process (:func:`workers.runner.start_periodic`, started once by
the supervisor, so it keeps running across Redis outages and RQ worker restarts);
concurrent sweeps are safe because each expiry is one guarded transaction.

The scheduler tick (:func:`tick`) runs every ``SCHEDULE_SWEEP_SECONDS`` (1 s) in its own thread, so a
due issue is claimable within about a second even when nobody claims (a claim promotes due
issues itself). Each batch is one script that re-checks every issue, so concurrent ticks are safe.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loop.runtime import Loop
    from loop.settings import Settings

from loop import metrics
from loop.tunables import LEASE_SWEEP_SECONDS as LEASE_SWEEP_SECONDS  # re-exported: workers.runner
from loop.tunables import SCHEDULE_SWEEP_SECONDS as SCHEDULE_SWEEP_SECONDS  # re-exported: workers.runner

log = logging.getLogger("loop.leases")


def expire_leases(store: Loop, max_batches: int = 100) -> int:
    """Expire every due lease (in batches); returns how many sessions were expired."""
    total = 0
    for _ in range(max_batches):
        n = int(store.dispatch.expire_due())
        total += n
        if n == 0:
            break
    # Readiness (GET /health/ready) reports the sweep overdue when this stops advancing.
    store.r.set(store.keys.lease_sweep(), store.now())
    if total:
        metrics.LEASE_EXPIRIES.inc(total)
        log.info("expired %d lease(s)", total, extra={"fields": {"expired": total}})
    return total


def sweep(settings: Settings) -> None:
    """Periodic entry point: one sweep with the process's store for ``settings``."""
    from loop.runtime import process_store  # the worker builds its graph once, on first use
    expire_leases(process_store(settings))


def promote_scheduled(store: Loop) -> int:
    """Move every due scheduled issue into the ready sets (in batches); returns how many moved."""
    moved = store.dispatch.promote_due()
    if moved:
        log.info("%d scheduled issue(s) fell due", moved, extra={"fields": {"promoted": moved}})
    return moved


def tick(settings: Settings) -> None:
    """Periodic entry point of the scheduler: one promotion pass with the process's store."""
    from loop.runtime import process_store
    promote_scheduled(process_store(settings))
