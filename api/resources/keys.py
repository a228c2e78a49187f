"""``/api/keys``: named API keys, managed with the bootstrap key only."""

from __future__ import annotations

import falcon

from api import openapi as oa
from api.http import Api, Op, Route, no_content, send
from loop.errors import Forbidden
from loop.schema import Body, Str
from loop.store.apikeys import BOOTSTRAP_NAME

CREATE = Body({"name": Str(required=True, min_len=1, max_len=100, pattern=r"[A-Za-z0-9][A-Za-z0-9_.@-]*")})


def _require_bootstrap(req: falcon.Request) -> None:
    if req.context.key_name != BOOTSTRAP_NAME:
        raise Forbidden("Only the bootstrap key (LOOP_API_KEY) may manage API keys")


class Keys:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_bootstrap(req)
        rows = self.api.store.apikeys.list()
        send(resp, {"data": rows, "total": len(rows)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_bootstrap(req)
        data = self.api.body(req, CREATE)
        row = self.api.store.apikeys.create(data["name"])
        # What an Idempotency-Key replay may show again: everything but the secret (Op(secret=True)).
        req.context.secret_replay = {"key": {k: v for k, v in row.items() if k != "key"}}
        send(resp, {"data": row}, 201)


class KeyItem:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        _require_bootstrap(req)
        self.api.store.apikeys.delete(key_id)
        no_content(resp)


def routes(api: Api) -> list[Route]:
    t = "Keys"
    return [
        Route("/api/keys", Keys(api), [
            Op("GET", "List named API keys (never the secrets)", t, responses={200: "OK", 403: "Not bootstrap"},
               response_body=oa.wrapped(oa.OBJECT, total=True)),
            Op("POST", "Create a named API key; the secret is returned once", t, body=CREATE,
               responses={201: "Created", 400: "Invalid", 403: "Not bootstrap",
                          409: "Name taken, or an Idempotency-Key replay of a creation (secret not shown again)"},
               response_body=oa.wrapped(oa.obj(id=oa.STRING, name=oa.STRING, key=oa.STRING)), secret=True),
        ]),
        Route("/api/keys/{key_id}", KeyItem(api), [
            Op("DELETE", "Revoke a named API key (by id or name)", t,
               responses={204: "Revoked", 403: "Not bootstrap", 404: "Not found"}),
        ]),
    ]
