"""Claim-token fencing shared by every issue write that an agent makes with its claim.

An ``X-Loop-Claim-Token`` header turns a write into a fenced one: dispatch's ``fence`` check
runs inside the write's WATCH/MULTI and vetoes it with 409 unless the token is the issue's
active, unexpired claim (docs/dispatch.md, "Fencing"). No header: the write is unfenced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import falcon

from loop.store.types import Pipe

if TYPE_CHECKING:
    from loop.runtime import Loop

TOKEN_HEADER = "X-Loop-Claim-Token"

#: ``check(pipe, issue_row)``: runs in the write's transaction, raises ``Conflict`` when stale.
Check = Callable[[Pipe, dict[str, Any]], None]


def claim_check(store: Loop, req: falcon.Request) -> Check | None:
    """The fence for this request's claim token, or ``None`` when it carries none."""
    token = req.get_header(TOKEN_HEADER)
    return store.dispatch.fence(token) if token else None
