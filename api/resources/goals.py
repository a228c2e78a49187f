"""``/api/goals``."""

from __future__ import annotations

import falcon

from api import openapi
from api.http import Api, Op, Route, send
from api.resources.crud import Collection, Item, crud_routes
from loop.clock import parse_iso
from loop.errors import ValidationError
from loop.models import GOAL_DIRECTIONS, GOAL_STATUSES
from loop.schema import PAGINATION, Body, Enum, EnumList, Id, Num, Query, Str
from loop.store.goals import Reading

LIST_QUERY = Query({"status": EnumList(values=GOAL_STATUSES),
                    **PAGINATION})

CREATE = Body({
    "title": Str(required=True, min_len=1, max_len=500),
    "description": Str(),
    "metric": Str(),
    "targetValue": Num(),
    "currentValue": Num(),
    "unit": Str(),
    "status": Enum(values=GOAL_STATUSES),
    "projectId": Id(),
    "direction": Enum(values=GOAL_DIRECTIONS),
})
UPDATE = Body({
    "title": Str(min_len=1, max_len=500),
    "description": Str(nullable=True),
    "metric": Str(nullable=True),
    "targetValue": Num(nullable=True),
    "currentValue": Num(nullable=True),
    "unit": Str(nullable=True),
    "status": Enum(values=GOAL_STATUSES),
    "projectId": Id(nullable=True),
    "direction": Enum(values=GOAL_DIRECTIONS, nullable=True),
}, min_fields=1)
READING = Body({
    "value": Num(required=True, description="A finite number"),
    "at": Str(min_len=1, max_len=64, description="ISO-8601 timestamp (default: now)"),
    "source": Str(min_len=1, max_len=200),
})
READINGS_QUERY = Query(dict(PAGINATION))
READING_SCHEMA = openapi.obj(value={"type": "number"}, at={"type": "string", "format": "date-time"},
                             source={"type": ["string", "null"]})


class GoalCollection(Collection):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, self.page)
        svc = self.service()
        if q.get("status"):
            rows, total = svc.list_by_status(q["limit"], q["offset"], q["status"])
        else:
            rows, total = svc.list(q["limit"], q["offset"])
        send(resp, {"data": [svc.wire(r) for r in rows], "total": total})


class GoalReadings:
    """``/api/goals/{row_id}/readings``: record one reading, list them newest first."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, row_id: str) -> None:
        q = self.api.query(req, READINGS_QUERY)
        rows, total = self.api.store.goals.readings(row_id, q["limit"], q["offset"])
        send(resp, {"data": rows, "total": total})

    def on_post(self, req: falcon.Request, resp: falcon.Response, row_id: str) -> None:
        data = self.api.body(req, READING)
        goals = self.api.store.goals
        at = self.api.store.now()
        if data.get("at") is not None:
            try:
                at = parse_iso(data["at"])
            except (ValueError, OverflowError, OSError):
                raise ValidationError("Invalid request body", {"at": ["must be an ISO-8601 timestamp"]}) from None
        goal = goals.record(row_id, Reading(float(data["value"]), at, data.get("source")))
        send(resp, {"data": goals.wire(goal)}, 201)


def routes(api: Api) -> list[Route]:
    svc = lambda: api.store.goals  # noqa: E731
    t = "Goals"
    return [
        *crud_routes("/api/goals", t, "Goal", GoalCollection(api, svc, CREATE, LIST_QUERY),
                     Item(api, svc, UPDATE), "goal"),
        Route("/api/goals/{row_id}/readings", GoalReadings(api), [
            Op("GET", "List a goal's readings, newest first (the last 1,000 are kept)", t, query=READINGS_QUERY,
               responses={200: "OK", 400: "Invalid query", 404: "Goal not found"},
               response_body=openapi.wrapped(READING_SCHEMA, total=True)),
            Op("POST", "Record a reading: the latest by `at` becomes currentValue; the goal may become "
               "achieved (or active again)", t, body=READING,
               responses={201: "The goal after the reading", 400: "Invalid", 404: "Goal not found"},
               response_schema="Goal"),
        ]),
    ]
