"""``GET /``, ``GET /health`` and ``GET /health/ready`` (docs/operations.md, "Health and Redis errors")."""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.http import Api, Op, Route, send
from loop import __version__, health
from loop.clock import iso
from loop.tunables import REDIS_RETRY_AFTER_SECONDS


class Root:
    """Liveness of the API process itself: never touches Redis."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"name": "Loop API", "version": __version__})


class Health:
    """Whether Redis can serve requests now: one write probe (a load balancer's check)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        now = iso(self.api.clock.now_ms())
        failure = health.probe(self.api.store)
        if failure is None:
            send(resp, {"ok": True, "service": "loop-api", "timestamp": now})
            return
        reason = health.reason(failure)
        # "unreachable: <class>" is the historical message; a reachable Redis that refuses writes says why.
        error = (f"Redis is unreachable: {type(failure).__name__}" if reason == "unreachable"
                 else f"Redis is unavailable: {reason}")
        send(resp, {"ok": False, "service": "loop-api", "timestamp": now, "redis": reason, "error": error}, 503)
        resp.set_header("Retry-After", str(REDIS_RETRY_AFTER_SECONDS))


class Ready:
    """Everything Loop needs: Redis, a live worker, the webhook queue moving, lease sweeps on time."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        problems, report = health.readiness(self.api.store, self.api.settings.queue_name)
        body = {"ok": not problems, "service": "loop-api", "timestamp": iso(self.api.clock.now_ms()),
                "problems": problems, **report}
        send(resp, body, 503 if problems else 200)
        if problems:
            resp.set_header("Retry-After", str(REDIS_RETRY_AFTER_SECONDS))


HEALTH = oa.obj(ok={"type": "boolean"}, service=oa.STRING, timestamp=oa.STRING)


def routes(api: Api) -> list[Route]:
    return [
        Route("/", Root(), [Op("GET", "Service name and version (never waits for Redis)", "System", public=True,
                                  response_body=oa.obj(name=oa.STRING, version=oa.STRING))]),
        Route("/health", Health(api), [Op("GET", "Whether Redis accepts writes now", "System", public=True,
                                         responses={200: "Healthy", 503: "Redis unavailable"},
                                         response_body=HEALTH)]),
        Route("/health/ready", Ready(api), [Op("GET", "Readiness: Redis, workers, webhook queue, lease sweeps",
                                               "System", public=True,
                                               responses={200: "Ready", 503: "Something needs attention"},
                                               response_body={**HEALTH, "required": [*HEALTH["required"], "problems"]})]),
    ]
