"""The Loop Python SDK.

    from loop.client import LoopClient, NotFoundError

    loop = LoopClient("http://localhost:5667", "loop_...")   # or LOOP_API_URL / LOOP_API_KEY
    issue = loop.issues.create("Fix the login bug", "task", status="todo", priority=2)
    for row in loop.issues.iter(status="todo"):
        ...
"""

from loop.client.client import LoopClient
from loop.client.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    LoopClientError,
    LoopConnectionError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    UnprocessableError,
    ValidationError,
)
from loop.client.resources import Page, paginate
from loop.client.transport import RetryPolicy

__all__ = [
    "AuthError",
    "ConflictError",
    "ForbiddenError",
    "LoopClient",
    "LoopClientError",
    "LoopConnectionError",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "UnprocessableError",
    "ValidationError",
    "paginate",
]
