"""Periodic prompt-experiment decisions: promote or withdraw candidates on evidence.

Runs every ``EXPERIMENT_SWEEP_SECONDS`` in each worker (:data:`workers.runner.PERIODIC`). Each
decision is one WATCH/MULTI transaction on the template row (``Versions.promote`` /
``Experiments.clear_candidate``), so concurrent sweeps in several workers decide once: the
second finds the candidate gone and drops its decision.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from loop.tunables import EXPERIMENT_SWEEP_SECONDS as EXPERIMENT_SWEEP_SECONDS  # re-exported: workers.runner

if TYPE_CHECKING:
    from loop.prompts.experiments import Verdict
    from loop.runtime import Loop
    from loop.settings import Settings

log = logging.getLogger("loop.experiments")


def decide_all(store: Loop, min_sessions: int) -> dict[str, Verdict]:
    """Evaluate every running experiment; returns the verdicts by template id."""
    verdicts = store.prompts.experiments.sweep(min_sessions)
    for template_id, verdict in verdicts.items():
        if verdict.action != "wait":
            log.info("template %s: %s (%s)", template_id, verdict.action, verdict.statement,
                     extra={"fields": {"templateId": template_id, "action": verdict.action, "z": verdict.z}})
    return verdicts


def sweep(settings: Settings) -> None:
    """Periodic entry point: one pass with the process's store for ``settings``."""
    from loop.runtime import process_store  # the worker builds its graph once, on first use
    decide_all(process_store(settings), settings.experiment_min_sessions)
