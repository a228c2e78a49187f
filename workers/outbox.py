"""The webhook outbox relay: enqueue accepted deliveries whose RQ job is missing.

With RQ on its own Redis (``LOOP_QUEUE_URL``), the API records an accepted webhook in the
namespace's outbox first and enqueues its job after (loop/signals/intake.py). A request that
died in between, or a queue Redis that was down, leaves an entry behind: this periodic job
enqueues it (unless the job exists) once it is older than ``OUTBOX_RELAY_AFTER_SECONDS``, so an
acknowledged webhook is never lost; the job's own done-marker keeps it from being normalized twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from loop.tunables import OUTBOX_RELAY_AFTER_SECONDS, OUTBOX_RELAY_BATCH
from loop.tunables import OUTBOX_RELAY_SECONDS as OUTBOX_RELAY_SECONDS  # re-exported: workers.runner

if TYPE_CHECKING:
    from loop.runtime import Loop
    from loop.settings import Settings

log = logging.getLogger("loop.outbox")


def relay_outbox(store: Loop, max_batches: int = 10) -> int:
    """Enqueue the due outbox entries of ``store``'s namespace; returns how many were enqueued."""
    from loop.signals.intake import Intake

    intake = Intake(store)
    cutoff = store.now() - OUTBOX_RELAY_AFTER_SECONDS * 1000
    total = 0
    for _ in range(max_batches):
        before = store.r.zcount(store.keys.webhook_outbox_due(), "-inf", cutoff)
        if not before:
            break
        total += intake.relay_due(cutoff, OUTBOX_RELAY_BATCH)
    if total:
        log.warning("relayed %d webhook job(s) from the outbox", total, extra={"fields": {"relayed": total}})
    return total


def relay(settings: Settings) -> None:
    """Periodic entry point (a no-op when RQ shares the data Redis: no outbox then)."""
    if not settings.separate_queue:
        return
    from loop.runtime import process_store

    relay_outbox(process_store(settings))
