"""Dispatch: scoring, ready sets, blocking, the Lua claim, leases and agent sessions.

See docs/dispatch.md. :func:`loop.runtime.build` creates the :class:`Dispatch` service and
registers its index hooks on issue, relation, goal and project writes.
"""

from __future__ import annotations

from loop.dispatch.index import DispatchIssueHook, DispatchRelationHook
from loop.dispatch.service import Dispatch

__all__ = ["Dispatch", "DispatchIssueHook", "DispatchRelationHook"]
