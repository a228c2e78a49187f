"""Dispatch: scoring, ready sets, blocking, the Lua claim, leases and agent sessions.

See docs/dispatch.md. :func:`install` attaches the service as ``store.dispatch`` and
registers its index hooks on issue and relation writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loop.dispatch.index import DispatchIssueHook, DispatchRelationHook
from loop.dispatch.service import Dispatch

if TYPE_CHECKING:
    from loop.store.base import RedisStore

__all__ = ["Dispatch", "install"]


def install(store: RedisStore) -> Dispatch:
    service = Dispatch(store)
    setattr(store, "dispatch", service)  # noqa: B010 - the store facade has no static slot for it
    store.issue_hooks.append(DispatchIssueHook(service.index))
    store.relations.hooks.append(DispatchRelationHook(service.index))
    service.goals.install()
    return service
