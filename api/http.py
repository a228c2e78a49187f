"""HTTP plumbing shared by every resource: JSON in and out, the route table, errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import falcon
import orjson
import redis

from loop import errors, metrics
from loop.redis_errors import unavailable_reason
from loop.schema import Body, Query
from loop.tunables import REDIS_RETRY_AFTER_SECONDS

if TYPE_CHECKING:
    from loop.clock import Clock
    from loop.runtime import Loop
    from loop.settings import Settings

log = logging.getLogger("loop.api")

JSON = "application/json"


def send(resp: falcon.Response, obj: Any, status: int = 200) -> None:
    """Serialize ``obj`` with orjson into the response."""
    resp.status = status
    resp.content_type = JSON
    resp.data = orjson.dumps(obj)


def no_content(resp: falcon.Response) -> None:
    resp.status = 204
    resp.data = b""


def raw_body(req: falcon.Request, limit: int) -> bytes:
    """The request body, read at most ``limit`` bytes (413 beyond, before buffering more)."""
    cached = getattr(req.context, "raw_body", None)
    if cached is not None:
        return bytes(cached)
    if req.content_length is not None and req.content_length > limit:
        raise errors.PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    if req.content_length is None and req.env.get("wsgi.input_terminated"):
        # A chunked body has no Content-Length; Falcon's bounded_stream would read
        # nothing, so read the server-terminated stream ourselves, stopping past the limit.
        data = _read_terminated(req.stream, limit + 1)
    else:
        data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise errors.PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    req.context.raw_body = data
    return bytes(data)


def _read_terminated(stream: Any, most: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < most:
        chunk = stream.read(most - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def json_body(req: falcon.Request, limit: int) -> Any:
    """Parsed JSON body. A non-JSON content type or an empty body counts as ``{}`` (reference)."""
    data = raw_body(req, limit)
    ctype = (req.content_type or "").split(";")[0].strip().lower()
    if not data.strip() or (ctype and not ctype.endswith("json")) or not ctype:
        return {}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise errors.ValidationError(
            "Malformed JSON in request body", {"body": ["is not valid JSON"]}
        ) from None


@dataclass
class Op:
    """One operation of a route: what the OpenAPI document says about it."""

    method: str
    summary: str
    tag: str
    body: Body | None = None
    query: Query | None = None
    responses: Mapping[int, str] = field(default_factory=lambda: {200: "OK"})
    #: Component schema of the 2xx body's ``data``: a ``{data: [...], total}`` page for a GET of a
    #: collection (last path segment literal), ``{data: {...}}`` otherwise (api/openapi.py ``envelope``).
    response_schema: str | None = None
    #: The whole 2xx body's JSON schema, for operations whose body is not an entity envelope.
    response_body: Mapping[str, Any] | None = None
    #: Media type of the 2xx body (``/metrics`` is Prometheus text, ``/api/docs`` HTML).
    media_type: str = "application/json"
    public: bool = False
    webhook: bool = False
    #: The success response carries a secret shown once (a new API key): never stored, so an
    #: Idempotency-Key replay answers 409 instead (api/middleware.py ``Idempotency``).
    secret: bool = False


@dataclass
class Route:
    path: str
    resource: Any
    ops: list[Op]


class Api:
    """Shared context given to every resource: the object graph (``store``), settings and clock."""

    def __init__(self, store: Loop, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    def body(self, req: falcon.Request, schema: Body) -> dict[str, Any]:
        return schema.validate(json_body(req, self.settings.max_body_bytes))

    @staticmethod
    def query(req: falcon.Request, schema: Query) -> dict[str, Any]:
        return schema.validate(req.params)


# --------------------------------------------------------------------- errors
_STATUS: dict[type[errors.LoopError], int] = {
    errors.ValidationError: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.BusinessRuleError: 422,
    errors.Unavailable: 503,
}


def status_for(exc: errors.LoopError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def handle_loop_error(req: falcon.Request, resp: falcon.Response, exc: errors.LoopError, params: Any) -> None:
    body: dict[str, Any] = {"error": exc.message}
    details = getattr(exc, "details", None)
    if details:
        body["details"] = details
    send(resp, body, status_for(exc))
    if isinstance(exc, errors.Unavailable):
        resp.set_header("Retry-After", str(REDIS_RETRY_AFTER_SECONDS))


def handle_http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params: Any) -> None:
    message = exc.description or exc.title or "Error"
    if exc.status_code == 404:
        message = "Not found"
    elif exc.status_code == 405:
        message = f"Method {req.method} not allowed on {req.path}"
    send(resp, {"error": message}, exc.status_code)
    headers: Any = exc.headers or {}
    for name, value in dict(headers).items():
        resp.set_header(name, value)


def handle_redis_error(req: falcon.Request, resp: falcon.Response, exc: Exception, params: Any) -> None:
    """Redis that cannot serve (unreachable, silent, OOM, READONLY, LOADING, MISCONF, BUSY...) is a
    503 the client may retry; any other Redis error is a bug (500)."""
    reason = unavailable_reason(exc)
    if reason is None:
        handle_unexpected(req, resp, exc, params)
        return
    log.warning("redis unavailable (%s) on %s %s: %s", reason, req.method, req.path, exc)
    # A silent Redis would make any further command of this request wait out the timeout again.
    req.context.redis_silent = isinstance(exc, redis.TimeoutError)
    metrics.redis_error(exc)
    send(resp, {"error": "Redis is unavailable; retry later", "details": {"redis": [reason]}}, 503)
    resp.set_header("Retry-After", str(REDIS_RETRY_AFTER_SECONDS))


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: Any) -> None:
    log.exception("unhandled error on %s %s", req.method, req.path)
    send(resp, {"error": "Internal server error"}, 500)


def install_error_handlers(app: falcon.App[Any, Any]) -> None:
    # Falcon picks the most specific registered handler by the exception's MRO.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(redis.RedisError, handle_redis_error)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.LoopError, handle_loop_error)
