"""Request middleware: CORS, early body-size rejection, Bearer auth, Idempotency-Key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import falcon
import orjson
from falcon.routing import CompiledRouter

from api.http import JSON, raw_body
from loop import errors

if TYPE_CHECKING:
    from loop.store.idempotency import Idempotency as IdempotencyStore

CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Loop-Claim-Token"


class Cors:
    """Reflects allowed origins; answers preflights with 204 before auth runs."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        origin = req.get_header("Origin")
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
            resp.status = 204
            resp.data = b""
            if origin in self.origins:
                resp.set_header("Access-Control-Allow-Methods", CORS_METHODS)
                resp.set_header("Access-Control-Allow-Headers", CORS_HEADERS)
                resp.set_header("Access-Control-Max-Age", "86400")
            resp.complete = True

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        origin = req.get_header("Origin")
        if origin in self.origins:
            resp.set_header("Access-Control-Allow-Origin", origin)
            resp.append_header("Vary", "Origin")


class BodyLimit:
    """413 on a declared Content-Length over the route's limit, before any byte is read.

    The limit is decided by the resource the router will serve (as :class:`Auth` does): routes
    whose operations are webhooks (``Op(webhook=True)``) get ``webhook_limit`` (providers send
    large payloads and do not retry a 413), every other path ``limit``. The chosen limit lands in
    ``req.context.body_limit`` for whatever reads the body later (Idempotency, the resource).
    """

    def __init__(self, limit: int, webhook_limit: int | None = None, router: CompiledRouter | None = None,
                 webhook_resources: Iterable[object] = ()) -> None:
        self.limit = limit
        self.webhook_limit = limit if webhook_limit is None else webhook_limit
        self.router = router
        self.webhooks = frozenset(id(r) for r in webhook_resources)

    def limit_for(self, req: falcon.Request) -> int:
        if self.router is not None and self.webhooks:
            found = self.router.find(req.path, req)
            if found is not None and id(found[0]) in self.webhooks:
                return self.webhook_limit
        return self.limit

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = req.context.body_limit = self.limit_for(req)
        if req.content_length is not None and req.content_length > limit:
            raise errors.PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")


class Auth:
    """Bearer auth, decided by the route that will serve the request.

    The app's own router is asked which resource ``req.path`` reaches (exactly as Falcon will
    route it: ``//api/issues`` reaches the same resource as ``/api/issues``), so no spelling of
    a path reaches a protected resource without a key. Only resources whose every operation is
    public (webhooks, ``/``, ``/health``, the OpenAPI document) are open. A path no route
    serves needs a key when its first segment is ``api``, so an unknown ``/api`` route without
    a key is a 401 as in the reference. The key's name lands in ``req.context.key_name``.
    """

    def __init__(self, apikeys: Any, router: CompiledRouter, public_resources: Iterable[object]) -> None:
        self.apikeys = apikeys
        self.router = router
        self.public = frozenset(id(r) for r in public_resources)

    def protected(self, req: falcon.Request) -> bool:
        found = self.router.find(req.path, req)
        if found is not None:
            return id(found[0]) not in self.public
        first = next((seg for seg in req.path.split("/") if seg), "")
        return first.lower() == "api"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.key_name = None
        if resp.complete or not self.protected(req):
            return
        header = req.get_header("Authorization") or ""
        if not header.startswith("Bearer "):
            raise errors.Unauthorized("Missing or malformed Authorization header")
        name = self.apikeys.authenticate(header[len("Bearer "):])
        if name is None:
            raise errors.Unauthorized("Invalid API key")
        req.context.key_name = name


SECRET_REPLAYED = ("This request already succeeded and its secret was shown once; it is not stored, so it "
                   "cannot be replayed. Nothing new was created; use a new Idempotency-Key to create another.")


class Idempotency:
    """Replays the stored response of a repeated ``Idempotency-Key`` (POST/PATCH/DELETE).

    A success of an operation marked ``Op(secret=True)`` (routed like :class:`Auth` does) is never
    stored: its record is a 409 ``{"error": SECRET_REPLAYED, **req.context.secret_replay}`` (the
    resource puts what may be shown again there, e.g. the new key's id and name), so a replay
    neither reveals the secret nor mints a second one, and Redis never holds it in clear.
    """

    METHODS = frozenset(("POST", "PATCH", "DELETE"))

    def __init__(self, store: IdempotencyStore, limit: int, router: CompiledRouter | None = None,
                 secret_ops: Iterable[tuple[object, str]] = ()) -> None:
        self.store = store
        self.limit = limit
        self.router = router
        self.secret_ops = frozenset((id(resource), method) for resource, method in secret_ops)

    def secret(self, req: falcon.Request) -> bool:
        if self.router is None or not self.secret_ops:
            return False
        found = self.router.find(req.path, req)
        return found is not None and (id(found[0]), req.method) in self.secret_ops

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.idem = None
        idem_key = req.get_header("Idempotency-Key")
        if not idem_key or req.method not in self.METHODS or resp.complete:
            return
        if len(idem_key) > 255:
            raise errors.ValidationError(
                "Idempotency-Key must be at most 255 characters", {"Idempotency-Key": ["is too long"]}
            )
        body_hash = hashlib.sha256(raw_body(req, getattr(req.context, "body_limit", self.limit))).hexdigest()
        principal = req.context.key_name or "-"
        state, value = self.store.begin(principal, req.method, req.relative_uri, idem_key, body_hash)
        if state == "new":
            req.context.idem = (value, body_hash, self.secret(req))
        elif state == "replay":
            resp.status = value["status"]
            if value["body"]:
                resp.data = value["body"].encode()
                resp.content_type = value.get("contentType") or "application/json"
            else:
                resp.data = b""
            resp.set_header("Idempotent-Replayed", "true")
            resp.complete = True
        elif state == "pending":
            raise errors.Conflict("A request with this Idempotency-Key is still in progress")
        else:
            raise errors.BusinessRuleError(
                "This Idempotency-Key was already used with a different request body"
            )

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        idem = getattr(req.context, "idem", None)
        if not idem:
            return
        key, body_hash, secret = idem
        status = int(str(resp.status).split()[0])
        if status >= 500:
            # Behind a silent Redis the DELETE would wait out a second socket timeout (a 503 in
            # ~10 s, not ~5): leave the in-flight marker to expire (IDEMPOTENCY_LOCK_SECONDS).
            if not getattr(req.context, "redis_silent", False):
                self.store.abandon(key)
            return
        if secret and status < 300:
            shown = getattr(req.context, "secret_replay", None) or {}
            self.store.finish(key, 409, orjson.dumps({"error": SECRET_REPLAYED, **shown}), body_hash, JSON)
            return
        data = resp.data if resp.data is not None else (resp.text or "").encode()
        self.store.finish(key, status, data, body_hash, resp.content_type)
