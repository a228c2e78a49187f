"""``/api/projects``."""

from __future__ import annotations

from api.http import Api, Route
from api.resources.crud import Collection, Item, crud_routes
from loop.models import PROJECT_HEALTH, PROJECT_STATUSES
from loop.schema import Body, Enum, Id, Str

CREATE = Body({
    "name": Str(required=True, min_len=1, max_len=500),
    "description": Str(),
    "status": Enum(values=PROJECT_STATUSES),
    "health": Enum(values=PROJECT_HEALTH),
    "goalId": Id(),
})
UPDATE = Body({
    "name": Str(min_len=1, max_len=500),
    "description": Str(),
    "status": Enum(values=PROJECT_STATUSES),
    "health": Enum(values=PROJECT_HEALTH),
    "goalId": Id(nullable=True),
}, min_fields=1)


def routes(api: Api) -> list[Route]:
    svc = lambda: api.store.projects  # noqa: E731
    return crud_routes("/api/projects", "Projects", "Project", Collection(api, svc, CREATE),
                       Item(api, svc, UPDATE, detail=lambda pid: api.store.projects.detail(pid)), "project")
