"""Errors raised by :class:`loop.client.LoopClient`: one root, one class per kind of failure.

Every error carries the server's own message (``message``), the HTTP ``status`` (``None``
when the server was never reached), the optional ``details`` object of a validation
failure, and the request's ``method`` and ``url``.
"""

from __future__ import annotations

from typing import Any


class LoopClientError(Exception):
    """Root of every error the Loop SDK raises."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, details: Any = None,
                 method: str = "", url: str = "", body: Any = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.details = details
        self.method = method
        self.url = url
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        if not self.details or not isinstance(self.details, dict):
            return self.message
        parts = []
        for field, problems in self.details.items():
            text = ", ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
            if f"{field} {text}" not in self.message:  # the server's sentence often names the first one
                parts.append(f"{field}: {text}")
        return f"{self.message} ({'; '.join(parts)})" if parts else self.message


class LoopConnectionError(LoopClientError):
    """The server could not be reached (refused, reset, DNS, timeout).

    ``sent`` is False when the request surely never reached the server (connection refused,
    unknown host), True when it may have (reset or timed out after sending).
    """

    sent: bool = True


class ValidationError(LoopClientError):
    """The request was rejected as invalid (HTTP 400, or 422 for a business rule)."""

    status = 400


class UnprocessableError(ValidationError):
    """Well-formed input that breaks a rule (HTTP 422), e.g. ``Parent issue not found``."""

    status = 422


class AuthError(LoopClientError):
    """Missing or wrong API key (HTTP 401)."""

    status = 401


class ForbiddenError(AuthError):
    """A valid key that may not do this (HTTP 403), e.g. managing keys with a named key."""

    status = 403


class NotFoundError(LoopClientError):
    """The resource does not exist (HTTP 404)."""

    status = 404


class ConflictError(LoopClientError):
    """A uniqueness or concurrency conflict (HTTP 409), e.g. a stale claim token."""

    status = 409


class PayloadTooLargeError(ValidationError):
    """The request body is over the server's limit (HTTP 413)."""

    status = 413


class RateLimitError(LoopClientError):
    """Too many requests (HTTP 429); ``retry_after`` holds the server's hint in seconds."""

    status = 429


class ServerError(LoopClientError):
    """The server failed (HTTP 5xx)."""

    status = 500


_BY_STATUS: dict[int, type[LoopClientError]] = {
    400: ValidationError, 401: AuthError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError,
    413: PayloadTooLargeError, 422: UnprocessableError, 429: RateLimitError,
}


def error_for_status(status: int) -> type[LoopClientError]:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if status == 405 or 400 <= status < 500:
        return ValidationError
    return LoopClientError
