"""``/api/labels``: schema failures here are 422 with zod-style details (reference tests)."""

from __future__ import annotations

import falcon

from api.http import Api, Route, json_body, send
from api.resources.crud import Collection, Item, crud_routes
from loop.errors import LabelValidationError, ValidationError
from loop.schema import Body, Str

CREATE = Body({"name": Str(required=True, min_len=1, max_len=100), "color": Str(required=True, min_len=1, max_len=50)})


def _as_422(exc: ValidationError) -> LabelValidationError:
    # zod reports a problem with the body as a whole (not an object) as a form error.
    fields = dict(exc.details)
    form = fields.pop("body", [])
    return LabelValidationError("Validation error", {"formErrors": form, "fieldErrors": fields})


class LabelCollection(Collection):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            super().on_get(req, resp)
        except ValidationError as exc:
            raise _as_422(exc) from None

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Malformed JSON stays the uniform 400 (improvement 8); only schema failures are 422.
        raw = json_body(req, self.api.settings.max_body_bytes)
        try:
            data = self.create.validate(raw)
        except ValidationError as exc:
            raise _as_422(exc) from None
        svc = self.service()
        send(resp, {"data": svc.wire(svc.create(data))}, 201)


def routes(api: Api) -> list[Route]:
    svc = lambda: api.store.labels  # noqa: E731
    return crud_routes("/api/labels", "Labels", "Label", LabelCollection(api, svc, CREATE),
                       Item(api, svc, None, idempotent_delete=True), "label", item_ops=("GET", "DELETE"))
