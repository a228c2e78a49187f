"""``GET /`` and ``GET /health``."""

from __future__ import annotations

import falcon

from api.http import Api, Op, Route, send
from loop import __version__
from loop.clock import iso


class Root:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"name": "Loop API", "version": __version__})


class Health:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        now = iso(self.api.clock.now_ms())
        try:
            self.api.store.r.ping()
        except Exception as exc:  # any failure to reach Redis means unhealthy
            send(resp, {"ok": False, "service": "loop-api", "timestamp": now,
                        "error": f"Redis is unreachable: {exc.__class__.__name__}"}, 503)
            return
        send(resp, {"ok": True, "service": "loop-api", "timestamp": now})


def routes(api: Api) -> list[Route]:
    return [
        Route("/", Root(), [Op("GET", "Service name and version", "System", public=True)]),
        Route("/health", Health(api), [Op("GET", "Liveness and Redis reachability", "System", public=True,
                                         responses={200: "Healthy", 503: "Redis unreachable"})]),
    ]
