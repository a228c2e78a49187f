"""``/api/labels``: schema failures are the uniform 400 like everywhere else (improvement 8)."""

from __future__ import annotations

from api.http import Api, Route
from api.resources.crud import Collection, ReadDeleteItem, crud_routes
from loop.schema import Body, Str

CREATE = Body({"name": Str(required=True, min_len=1, max_len=100), "color": Str(required=True, min_len=1, max_len=50)})


def routes(api: Api) -> list[Route]:
    svc = lambda: api.store.labels  # noqa: E731
    return crud_routes("/api/labels", "Labels", "Label", Collection(api, svc, CREATE),
                       ReadDeleteItem(api, svc, None, idempotent_delete=True), "label", item_ops=("GET", "DELETE"))
