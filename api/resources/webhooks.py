"""``POST /api/signals/{github,sentry,posthog}``: verified, de-duplicated, queued (improvement 1).

Exempt from Bearer auth (``Op(webhook=True)``): the provider's signature is the credential.
Order of checks: secret configured (500 naming the variable), signature header present
(401), body within ``LOOP_WEBHOOK_MAX_BODY_BYTES`` (413), signature over the raw bytes (401), JSON object nested at
most ``MAX_JSON_DEPTH`` levels (400),
then dedup + enqueue in one MULTI (202; 503 when Redis is unreachable, via the app's Redis
error handler, so the provider retries). Nothing is written before the signature is valid.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from api.http import Api, Op, Route, raw_body, send
from loop import errors, metrics
from loop.schema import MAX_JSON_DEPTH, json_depth
from loop.signals.intake import Intake
from loop.signals.providers import PROVIDERS, Provider

#: Row schemas this module adds to the OpenAPI document.
ENTITIES = {"WebhookDelivery": {"deliveryId": "s", "status": "s"}}


class Webhook:
    def __init__(self, api: Api, provider: Provider, intake: Intake) -> None:
        self.api = api
        self.provider = provider
        self.intake = intake

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        outcome = "error"  # Redis could not serve (503) or a bug: the provider retries
        try:
            outcome = self._accept(req, resp)
        except errors.LoopError:  # bad signature, body, JSON or missing secret: refused for good
            outcome = "rejected"
            raise
        finally:
            metrics.WEBHOOKS.labels(self.provider.name, outcome).inc()

    def _accept(self, req: falcon.Request, resp: falcon.Response) -> str:
        provider = self.provider
        secrets = provider.check_config(self.api.settings)
        header = req.get_header
        provider.require_headers(header)
        body = raw_body(req, self.api.settings.webhook_max_body_bytes)
        provider.authenticate(secrets, header, body)
        payload = _parse(body)
        delivery = provider.delivery(header, payload, body)
        if provider.ignored(delivery):
            send(resp, {"data": {"deliveryId": delivery.delivery_id, "status": "ignored"}}, 200)
            return "ignored"
        accepted = self.intake.accept(delivery, body)
        send(resp, {"data": {"deliveryId": accepted.delivery_id, "status": accepted.status}}, 202)
        return accepted.status


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.ValidationError("Malformed JSON in request body", {"body": ["is not valid JSON"]}) from None
    if not isinstance(payload, dict):
        raise errors.ValidationError("Request body must be a JSON object.", {"body": ["must be a JSON object"]})
    if json_depth(payload) > MAX_JSON_DEPTH:
        # Checked before the 202: deeper than the store can write back out, the job would fail forever.
        problem = f"must not nest deeper than {MAX_JSON_DEPTH} levels"
        raise errors.ValidationError(f"Request body {problem}.", {"body": [problem]})
    return payload


def routes(api: Api) -> list[Route]:
    intake = Intake(api.store)
    responses = {202: "Queued or duplicate", 200: "Ignored (GitHub ping)", 400: "Not a JSON object, or nested too deep",
                 401: "Missing or invalid signature", 413: "Body too large",
                 500: "Webhook secret not configured", 503: "Redis unavailable; retry"}
    return [
        Route(f"/api/signals/{name}", Webhook(api, provider, intake), [
            Op("POST", f"{name} webhook: verify, de-duplicate, enqueue normalization", "Webhooks",
               responses=responses, response_schema="WebhookDelivery", webhook=True),
        ])
        for name, provider in PROVIDERS.items()
    ]
