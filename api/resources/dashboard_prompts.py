"""``GET /api/dashboard/prompts``: the health of every prompt template at a glance."""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.http import Api, Op, Route, send


class DashboardPrompts:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"data": self.api.store.prompts.dashboard()})


def routes(api: Api) -> list[Route]:
    return [
        Route("/api/dashboard/prompts", DashboardPrompts(api), [
            Op("GET", "Per template: active and recent versions, review summary, needsAttention", "Dashboard",
               response_body=oa.wrapped({"type": "array", "items": oa.OBJECT})),
        ]),
    ]
