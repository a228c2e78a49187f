"""``/api/templates/:id/experiment``, ``/candidate``, ``/rollback``, ``/history``: prompt experiments
(docs/prompts.md, "Experiments"). A person's decisions are recorded under their API key's name."""

from __future__ import annotations

import falcon

from api.http import Api, Op, Route, send
from api.openapi import OBJECT, wrapped
from loop.schema import PAGINATION, Body, Bool, Id, Int, Query
from loop.tunables import CANDIDATE_SHARE_MAX, CANDIDATE_SHARE_MIN

CANDIDATE = Body({
    "versionId": Id(required=True, description="A draft or retired version of this template"),
    "share": Int(required=True, minimum=CANDIDATE_SHARE_MIN, maximum=CANDIDATE_SHARE_MAX,
                 description="Percent of this template's dispatches that get the candidate"),
    "autoPromote": Bool(default=False, description="Let the worker promote the candidate on evidence"),
})
PAGE = Query(dict(PAGINATION))


def actor(req: falcon.Request) -> str:
    return f"key:{req.context.key_name or 'anonymous'}"


class Experiment:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        exp = self.api.store.prompts.experiments
        send(resp, {"data": exp.report(template_id, self.api.settings.experiment_min_sessions)})


class Candidate:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        data = self.api.body(req, CANDIDATE)
        prompts = self.api.store.prompts
        row = prompts.experiments.set_candidate(template_id, data["versionId"], data["share"],
                                                bool(data.get("autoPromote")), actor(req))
        send(resp, {"data": prompts.templates.wire(row)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        prompts = self.api.store.prompts
        send(resp, {"data": prompts.templates.wire(prompts.experiments.clear_candidate(template_id, actor(req)))})


class CandidatePromote:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        prompts = self.api.store.prompts
        send(resp, {"data": prompts.versions.wire(prompts.experiments.promote_candidate(template_id, actor(req)))})


class CandidateWithdraw:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        prompts = self.api.store.prompts
        row = prompts.experiments.clear_candidate(template_id, actor(req), "withdraw", "withdrawn by a person")
        send(resp, {"data": prompts.templates.wire(row)})


class Rollback:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        prompts = self.api.store.prompts
        send(resp, {"data": prompts.versions.wire(prompts.experiments.rollback(template_id, actor(req)))})


class History:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        q = self.api.query(req, PAGE)
        entries, total = self.api.store.prompts.versions.history(template_id, q["limit"], q["offset"])
        send(resp, {"data": entries, "total": total})


def routes(api: Api, base: str) -> list[Route]:
    t = "Templates"
    missing = {404: "Template not found"}
    rule = {422: "No candidate, version already active, or the version does not render"}
    return [
        Route(base + "/{template_id}/experiment", Experiment(api), [
            Op("GET", "Active vs candidate evidence side by side, and the decision rule's verdict", t,
               responses={200: "OK", **missing}, response_body=wrapped(OBJECT)),
        ]),
        Route(base + "/{template_id}/candidate", Candidate(api), [
            Op("POST", "Try a version as the candidate on a share of dispatches", t, body=CANDIDATE,
               responses={200: "OK", 400: "Invalid", 404: "Template or version not found", **rule},
               response_schema="PromptTemplate"),
            Op("DELETE", "End the experiment without a switch", t, responses={200: "OK", **missing, **rule},
               response_schema="PromptTemplate"),
        ]),
        Route(base + "/{template_id}/candidate/promote", CandidatePromote(api), [
            Op("POST", "Promote the candidate now (recorded in the history)", t,
               responses={200: "OK", **missing, **rule}, response_schema="PromptVersion"),
        ]),
        Route(base + "/{template_id}/candidate/withdraw", CandidateWithdraw(api), [
            Op("POST", "Withdraw the candidate (recorded in the history)", t,
               responses={200: "OK", **missing, **rule}, response_schema="PromptTemplate"),
        ]),
        Route(base + "/{template_id}/rollback", Rollback(api), [
            Op("POST", "Re-activate the version the last promotion retired", t,
               responses={200: "OK", **missing, 422: "Nothing to roll back to"}, response_schema="PromptVersion"),
        ]),
        Route(base + "/{template_id}/history", History(api), [
            Op("GET", "Decisions on the template's versions, newest first", t, query=PAGE,
               responses={200: "OK", 400: "Invalid", **missing}, response_body=wrapped(OBJECT, total=True)),
        ]),
    ]
