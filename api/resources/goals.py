"""``/api/goals``."""

from __future__ import annotations

from api.http import Api, Route
from api.resources.crud import Collection, Item, crud_routes
from loop.models import GOAL_STATUSES
from loop.schema import Body, Enum, Num, Str

CREATE = Body({
    "title": Str(required=True, min_len=1, max_len=500),
    "description": Str(),
    "metric": Str(),
    "targetValue": Num(),
    "currentValue": Num(),
    "unit": Str(),
    "status": Enum(values=GOAL_STATUSES),
    "projectId": Str(),
})
UPDATE = Body({
    "title": Str(min_len=1, max_len=500),
    "description": Str(nullable=True),
    "metric": Str(nullable=True),
    "targetValue": Num(nullable=True),
    "currentValue": Num(nullable=True),
    "unit": Str(nullable=True),
    "status": Enum(values=GOAL_STATUSES),
    "projectId": Str(nullable=True),
}, min_fields=1)


def routes(api: Api) -> list[Route]:
    svc = lambda: api.store.goals  # noqa: E731
    return crud_routes("/api/goals", "Goals", "Goal", Collection(api, svc, CREATE), Item(api, svc, UPDATE), "goal")
