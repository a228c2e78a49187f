"""``/api/goals``."""

from __future__ import annotations

import falcon

from api.http import Api, Route, send
from api.resources.crud import Collection, Item, crud_routes
from loop.models import GOAL_STATUSES
from loop.schema import PAGINATION, Body, Enum, EnumList, Id, Num, Query, Str

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
}, min_fields=1)


class GoalCollection(Collection):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, self.page)
        svc = self.service()
        if q.get("status"):
            rows, total = svc.list_by_status(q["limit"], q["offset"], q["status"])
        else:
            rows, total = svc.list(q["limit"], q["offset"])
        send(resp, {"data": [svc.wire(r) for r in rows], "total": total})


def routes(api: Api) -> list[Route]:
    svc = lambda: api.store.goals  # noqa: E731
    return crud_routes("/api/goals", "Goals", "Goal", GoalCollection(api, svc, CREATE, LIST_QUERY),
                       Item(api, svc, UPDATE), "goal")
