"""Names the store package shares with everything above it: the Redis types, the id rule,
and the hooks run inside issue writes (with the intent a write is made with).

A leaf module (it imports nothing of Loop but :mod:`loop.models`), so every store service
and every subsystem can import it without an import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loop import models
from loop.redis_commands import Client, Pipe

__all__ = ["ATTEMPT_BLOCKING", "ATTEMPT_SESSION", "PLAIN", "Client", "Fence", "IssueHook", "Pipe", "SessionClose", "WriteIntent", "is_id"]

# An id from a URL or a body becomes part of a key name: one containing ':' could name
# another key of the namespace (``P:issue:<id>:labels`` is a set, so HGETALL would fail
# with WRONGTYPE). Such an id can never exist, so it is simply "not found".
_ID_RE = re.compile(r"[^:{}\s]{1,200}")


def is_id(value: object) -> bool:
    """Whether ``value`` could name a row (no key separators, no braces, not empty)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


#: ``pipe.attempt_reads[(ATTEMPT_SESSION, issue_id)]``: ``(session id or None, that session's hash)``,
#: the issue's active session as read under WATCH in this attempt (loop.dispatch.sessions.watched_active).
ATTEMPT_SESSION = "session"
#: ``pipe.attempt_reads[(ATTEMPT_BLOCKING, issue_id)]``: the ids of the issues it blocks (sorted), as read
#: in this attempt (loop.dispatch.index.DispatchIssueHook, when a write resolves or reopens the issue).
ATTEMPT_BLOCKING = "blocking"


class Fence:
    """A ``check`` for ``Issues.update`` that vetoes the write unless a claim is live.

    ``session_id``: the session the claim names (``None``: not known), which the write watches
    and reads with the issue in one round trip (``Issues.update_if``'s ``session``)."""

    session_id: str | None = None

    def __call__(self, pipe: Pipe, old: models.Row) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class SessionClose:
    """The issue write closes agent session ``session_id`` with ``outcome`` (release, expiry,
    failed render), and with ``label_id`` attaches that label (parking)."""

    session_id: str
    outcome: str
    reason: str | None = None
    label_id: str | None = None


@dataclass(frozen=True)
class WriteIntent:
    """Why an issue write is made, handed to every :class:`IssueHook` (explicitly, no context).

    ``guard``: the webhook delivery guard key a create must WATCH (at most once per delivery);
    ``close``: the session the write closes and how; ``signal``: the signal write (a
    :class:`loop.store.signals.SignalWrite`) this issue write carries, staged in its MULTI.
    All ``None``: a plain write.
    """

    guard: str | None = None
    close: SessionClose | None = None
    signal: object | None = None


PLAIN = WriteIntent()


class IssueHook:
    """Extension point run inside every issue write transaction (dispatch indexes use it).

    ``prepare`` runs while the transaction is still watching (it may read and
    ``pipe.watch`` more keys) and returns state for ``stage``, which queues writes after
    ``MULTI``. ``old`` is ``None`` on create; ``new`` has ``deletedAt`` set on delete.
    """

    def prepare(self, pipe: Pipe, old: models.Row | None, new: models.Row, intent: WriteIntent) -> Any:
        return None

    def stage(self, pipe: Pipe, old: models.Row | None, new: models.Row, state: Any) -> None:
        return None
