"""The three webhook providers: secret setting, authentication, delivery identity, mapping.

``authenticate`` runs on the raw body before anything is parsed; ``delivery`` names the
delivery (shown to the caller) and its de-duplication identity; ``normalize`` (run by the RQ
job) maps the payload to a signal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loop.errors import ConfigError, Unauthorized
from loop.settings import Settings
from loop.signals import github, posthog, sentry, verify
from loop.signals.common import Normalized

Header = Callable[[str], str | None]


@dataclass(frozen=True)
class Delivery:
    """One accepted webhook request, as queued for the normalization job."""

    provider: str
    delivery_id: str
    identity: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The identity as a fixed-size key component."""
        return hashlib.sha256(self.identity.encode("utf-8")).hexdigest()[:32]


def _secrets(settings: Settings, attr: str, env: str) -> tuple[str, ...]:
    configured: tuple[str, ...] = getattr(settings, attr)
    if not configured:
        # Never accept unauthenticated deliveries: a missing secret is an operator error.
        raise ConfigError(f"{env} not configured")
    return configured


def _require(header: Header, name: str) -> str:
    value = header(name)
    if not value:
        raise Unauthorized(f"Missing {name} header")
    return value


class GitHub:
    name = "github"
    env = "GITHUB_WEBHOOK_SECRET"

    def check_config(self, settings: Settings) -> tuple[str, ...]:
        return _secrets(settings, "github_webhook_secrets", self.env)

    def require_headers(self, header: Header) -> None:
        _require(header, "X-Hub-Signature-256")

    def authenticate(self, secrets: tuple[str, ...], header: Header, body: bytes) -> None:
        verify.github(secrets, body, _require(header, "X-Hub-Signature-256"))

    def delivery(self, header: Header, payload: Mapping[str, Any], body: bytes) -> Delivery:
        event = (header("X-GitHub-Event") or "unknown").strip() or "unknown"
        guid = (header("X-GitHub-Delivery") or "").strip()
        delivery_id = guid or "sha256:" + hashlib.sha256(body).hexdigest()
        return Delivery(self.name, delivery_id, delivery_id, {"event": event})

    @staticmethod
    def ignored(delivery: Delivery) -> bool:
        """``ping`` (sent when the hook is created) is answered and creates nothing."""
        return delivery.meta.get("event") == "ping"

    @staticmethod
    def normalize(meta: Mapping[str, str], payload: Mapping[str, Any]) -> Normalized | None:
        return github.normalize(meta.get("event", "unknown"), payload)


class Sentry:
    name = "sentry"
    env = "SENTRY_CLIENT_SECRET"

    def check_config(self, settings: Settings) -> tuple[str, ...]:
        return _secrets(settings, "sentry_client_secrets", self.env)

    def require_headers(self, header: Header) -> None:
        _require(header, "Sentry-Hook-Signature")

    def authenticate(self, secrets: tuple[str, ...], header: Header, body: bytes) -> None:
        verify.sentry(secrets, body, _require(header, "Sentry-Hook-Signature"))

    def delivery(self, header: Header, payload: Mapping[str, Any], body: bytes) -> Delivery:
        resource = sentry.resource_of(header("Sentry-Hook-Resource"), payload)
        ident = sentry.identity(resource, payload, body)
        return Delivery(self.name, ident, ident, {"resource": resource})

    @staticmethod
    def ignored(delivery: Delivery) -> bool:
        return False

    @staticmethod
    def normalize(meta: Mapping[str, str], payload: Mapping[str, Any]) -> Normalized | None:
        return sentry.normalize(meta.get("resource", "unknown"), payload)


class PostHog:
    name = "posthog"
    env = "POSTHOG_WEBHOOK_SECRET"

    def check_config(self, settings: Settings) -> tuple[str, ...]:
        return _secrets(settings, "posthog_webhook_secrets", self.env)

    @staticmethod
    def _given(header: Header) -> str | None:
        given = header("X-PostHog-Secret")
        if given:
            return given
        auth = header("Authorization") or ""
        return auth[len("Bearer "):] if auth.startswith("Bearer ") and len(auth) > len("Bearer ") else None

    def require_headers(self, header: Header) -> None:
        if not self._given(header):
            raise Unauthorized("Missing X-PostHog-Secret header")

    def authenticate(self, secrets: tuple[str, ...], header: Header, body: bytes) -> None:
        given = self._given(header)
        if not given:
            raise Unauthorized("Missing X-PostHog-Secret header")
        verify.shared_secret(secrets, given)

    def delivery(self, header: Header, payload: Mapping[str, Any], body: bytes) -> Delivery:
        ident = posthog.identity(payload, body)
        return Delivery(self.name, ident, ident, {})

    @staticmethod
    def ignored(delivery: Delivery) -> bool:
        return False

    @staticmethod
    def normalize(meta: Mapping[str, str], payload: Mapping[str, Any]) -> Normalized | None:
        return posthog.normalize(payload)


Provider = GitHub | Sentry | PostHog
PROVIDERS: dict[str, Provider] = {p.name: p for p in (GitHub(), Sentry(), PostHog())}
