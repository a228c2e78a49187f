"""One log line and one metrics observation per request (docs/operations.md, "Logs").

First in the middleware chain, so its ``process_response`` runs last and sees the final status
(after auth refusals, body-limit 413s, idempotent replays and error handlers). The line names the
request id (the client's ``X-Request-ID`` when it is a sane token, echoed back), method, route
template, status, duration and the API key's *name*: never a header value, a query or a body.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import falcon

from loop import metrics
from loop.logs import request_id

log = logging.getLogger("loop.api.access")
REQUEST_ID_HEADER = "X-Request-ID"


class RequestLog:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.request_id = rid = request_id(req.get_header(REQUEST_ID_HEADER))
        resp.set_header(REQUEST_ID_HEADER, rid)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        started = getattr(req.context, "started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        status = int(resp.status_code)
        route = req.uri_template
        metrics.observe_request(route, req.method, status, seconds)
        fields = {"requestId": getattr(req.context, "request_id", "-"), "method": req.method,
                  "route": route or metrics.UNMATCHED, "status": status, "durationMs": round(seconds * 1000, 2),
                  "key": getattr(req.context, "key_name", None) or "-"}
        log.info("%s %s %d", req.method, fields["route"], status, extra={"fields": fields})
