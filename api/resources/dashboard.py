"""``GET /api/dashboard/stats`` and ``GET /api/dashboard/activity`` (contract 1.12).

Thin: parse, call :class:`loop.store.dashboard.DashboardService`, send. (``/api/dashboard/prompts``
belongs to the prompt engine.)
"""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.http import Api, Op, Route, send
from loop.schema import Int, Query
from loop.store.dashboard import DashboardService

ACTIVITY_QUERY = Query({"limit": Int(minimum=1, maximum=200, default=20)})


class Stats:
    def __init__(self, api: Api, service: DashboardService) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"data": self.service.stats()})


class Activity:
    def __init__(self, api: Api, service: DashboardService) -> None:
        self.api = api
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, ACTIVITY_QUERY)
        chains = self.service.activity(q["limit"])
        send(resp, {"data": chains, "total": len(chains)})


def routes(api: Api) -> list[Route]:
    t = "Dashboard"
    # Built here until the composition root (loop/runtime.py) owns the services.
    service = DashboardService(api.store)
    return [
        Route("/api/dashboard/stats", Stats(api, service), [
            Op("GET", "Issue, goal and dispatch counts", t, response_body=oa.wrapped(oa.OBJECT)),
        ]),
        Route("/api/dashboard/activity", Activity(api, service), [
            Op("GET", "Most recently active issue chains (root, children, their relations)", t,
               query=ACTIVITY_QUERY, responses={200: "OK", 400: "Invalid limit"},
               response_body=oa.wrapped(oa.OBJECT, total=True)),
        ]),
    ]
