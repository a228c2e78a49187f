"""Generic collection/item resources over a :class:`loop.store.rows.RowService`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon

from api.http import Api, Op, Route, no_content, send
from loop.schema import PAGINATION, Body, Query

PAGE = Query(dict(PAGINATION))


class Collection:
    def __init__(self, api: Api, service: Callable[[], Any], create: Body, page: Query = PAGE) -> None:
        self.api, self.service, self.create, self.page = api, service, create, page

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, self.page)
        svc = self.service()
        rows, total = svc.list(q["limit"], q["offset"])
        send(resp, {"data": [svc.wire(r) for r in rows], "total": total})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        svc = self.service()
        row = svc.create(self.api.body(req, self.create))
        send(resp, {"data": svc.wire(row)}, 201)


class ReadDeleteItem:
    """An item that cannot be updated: no ``on_patch``, so Falcon answers PATCH 405 and OPTIONS omits it."""

    def __init__(self, api: Api, service: Callable[[], Any], update: Body | None,
                 detail: Callable[[str], Any] | None = None, idempotent_delete: bool = False) -> None:
        self.api, self.service, self.update, self.detail = api, service, update, detail
        self.idempotent_delete = idempotent_delete

    def on_get(self, req: falcon.Request, resp: falcon.Response, row_id: str) -> None:
        svc = self.service()
        send(resp, {"data": self.detail(row_id) if self.detail else svc.wire(svc.get_live(row_id))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, row_id: str) -> None:
        self.service().delete(row_id, idempotent=self.idempotent_delete)
        no_content(resp)


class Item(ReadDeleteItem):
    def on_patch(self, req: falcon.Request, resp: falcon.Response, row_id: str) -> None:
        if self.update is None:
            raise falcon.HTTPMethodNotAllowed(["GET", "DELETE"])
        svc = self.service()
        send(resp, {"data": svc.wire(svc.update(row_id, self.api.body(req, self.update)))})


def crud_routes(path: str, tag: str, schema: str, collection: Any, item: Any, noun: str,
                item_ops: tuple[str, ...] = ("GET", "PATCH", "DELETE")) -> list[Route]:
    summaries = {"GET": f"Get a {noun}", "PATCH": f"Update a {noun}", "DELETE": f"Soft-delete a {noun}"}
    responses = {"GET": {200: "OK", 404: "Not found"},
                 "PATCH": {200: "OK", 400: "Invalid", 404: "Not found", 422: "Rule"},
                 "DELETE": {204: "Deleted", 404: "Not found"}}
    return [
        Route(path, collection, [
            Op("GET", f"List {noun}s", tag, query=collection.page, response_schema=schema),
            Op("POST", f"Create a {noun}", tag, body=collection.create,
               responses={201: "Created", 400: "Invalid", 409: "Conflict", 422: "Rule"}, response_schema=schema),
        ]),
        Route(path + "/{row_id}", item, [
            Op(m, summaries[m], tag, body=item.update if m == "PATCH" else None, responses=responses[m],
               response_schema=schema if m != "DELETE" else None)
            for m in item_ops
        ]),
    ]
