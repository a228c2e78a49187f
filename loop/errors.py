"""Loop's exceptions: one root, domain meaning only. HTTP mapping lives in ``api``."""

from __future__ import annotations


class LoopError(Exception):
    """Root of every error Loop raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(LoopError):
    """Input failed schema validation (HTTP 400)."""

    def __init__(self, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class NotFound(LoopError):
    """A named resource does not exist (HTTP 404)."""


class BusinessRuleError(LoopError):
    """Well-formed input that breaks a domain rule (HTTP 422)."""


class Conflict(LoopError):
    """A uniqueness or concurrency conflict (HTTP 409)."""


class Unauthorized(LoopError):
    """Missing or wrong credentials (HTTP 401)."""


class Forbidden(LoopError):
    """Valid credentials that may not do this (HTTP 403)."""


class PayloadTooLarge(LoopError):
    """Request body over the configured limit (HTTP 413)."""


class Unavailable(LoopError):
    """A dependency (Redis) is unreachable (HTTP 503)."""


class ConfigError(LoopError):
    """Invalid settings; raised at start-up naming the variable."""


class PromptRenderError(LoopError):
    """A selected prompt template failed to render (dispatch puts the issue back)."""
