"""``/api/signals``: generic ingestion (synchronous, 201), list and get (improvement 12)."""

from __future__ import annotations

import math

import falcon

from api import openapi
from api.http import Api, Op, Route, send
from loop.errors import ValidationError
from loop.models import SEVERITIES
from loop.schema import PAGINATION, Body, Enum, Id, Query, Record, Str
from loop.store.goals import Reading
from loop.store.signals import SIGNAL_FIELDS, title_for

#: Row schemas this module adds to the OpenAPI document.
ENTITIES = {"Signal": SIGNAL_FIELDS}

CREATE = Body({
    "source": Str(required=True, min_len=1, max_len=200),
    "sourceId": Str(max_len=500),
    "type": Str(required=True, min_len=1, max_len=200),
    "severity": Enum(required=True, values=SEVERITIES),
    "payload": Record(required=True),
    "projectId": Id(),
    "fingerprint": Str(min_len=1, max_len=200,
                       description="Groups signals: while its issue is open, the same fingerprint joins it"),
    "goalId": Id(description="Record payload.value (a finite number) as a reading of this goal"),
})
LIST_QUERY = Query({
    "source": Str(min_len=1),
    "severity": Enum(values=SEVERITIES),
    "projectId": Str(min_len=1),
    **PAGINATION,
})


class SignalList:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, LIST_QUERY)
        signals = self.api.store.signals
        rows, total = signals.list(q, q["limit"], q["offset"])
        send(resp, {"data": [signals.wire(r) for r in rows], "total": total})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = self.api.body(req, CREATE)
        store = self.api.store
        signals = store.signals
        readings = []
        if data.get("goalId"):
            value = data["payload"].get("value")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValidationError("Invalid request body",
                                      {"payload.value": ["must be a finite number when goalId is given"]})
            store.goals.get_live(data["goalId"])  # 404 before any write (the write checks it again)
            readings.append((data["goalId"], Reading(float(value), store.now(), data["source"])))
        issue = signals.issue_data(data["source"], data["severity"], data["payload"],
                                   title_for(data["source"], data["type"], data["payload"]),
                                   project_id=data.get("projectId"))
        recorded = signals.create({**data, "sourceId": data.get("sourceId")}, issue, readings=readings)
        send(resp, {"data": {"signal": signals.wire(recorded.signal),
                             "issue": store.issues.wire(recorded.issue), "grouped": recorded.grouped}}, 201)


class SignalItem:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, signal_id: str) -> None:
        signals = self.api.store.signals
        send(resp, {"data": signals.wire(signals.get_live(signal_id))})


def routes(api: Api) -> list[Route]:
    t = "Signals"
    return [
        Route("/api/signals", SignalList(api), [
            Op("GET", "List signals (filters source, severity, projectId; paginated); each row carries "
               "groupCount, its issue's signalCount", t, query=LIST_QUERY,
               responses={200: "OK", 400: "Invalid query"}, response_schema="Signal"),
            Op("POST", "Ingest a signal: creates the signal and its triage issue atomically, or joins the open "
               "issue of its fingerprint (grouped: true)", t, body=CREATE,
               responses={201: "Created {signal, issue, grouped}", 400: "Invalid", 404: "Goal not found"},
               response_body=openapi.wrapped(openapi.obj(signal=openapi.ref("Signal"), issue=openapi.ref("Issue"),
                                                         grouped={"type": "boolean"}))),
        ]),
        Route("/api/signals/{signal_id}", SignalItem(api), [
            Op("GET", "Get a signal (with its original payload)", t,
               responses={200: "OK", 404: "Not found"}, response_schema="Signal"),
        ]),
    ]
