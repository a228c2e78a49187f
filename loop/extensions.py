"""Attaches optional domain services to a :class:`~loop.store.RedisStore`.

Each later subsystem (dispatch, signals, prompts) adds one line here, so the store facade
stays the single composition root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loop.store.base import RedisStore


def install(store: RedisStore) -> None:
    """Attach every installed subsystem's services to ``store``."""
    from loop import dispatch

    dispatch.install(store)
    from loop.store import signals

    signals.install(store)
    from loop import prompts

    prompts.install(store)
    return None
