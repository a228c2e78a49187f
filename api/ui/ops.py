"""Operations: failed webhook jobs (payload, requeue), workers, Redis memory, API keys."""

from __future__ import annotations

from typing import Any

import falcon
from rq.job import Job
from rq.registry import FailedJobRegistry

from api.http import Api
from api.resources import keys
from api.ui.actions import _act
from api.ui.base import UiResource, fail, form, render, typed
from loop import errors, health
from loop.tunables import UI_EXCERPT_CHARS as EXCERPT
from loop.tunables import UI_PAGE_SIZE


def _require_bootstrap(req: falcon.Request) -> None:
    if not req.context.ui.bootstrap:
        raise errors.Forbidden("Only the bootstrap key (LOOP_API_KEY) may manage API keys")


class _Registry:
    """RQ's failed-job registry of the webhook queue, on a binary connection (RQ pickles jobs)."""

    def __init__(self, api: Api) -> None:
        self.conn = api.store.rq
        self.registry = FailedJobRegistry(api.settings.queue_name, connection=self.conn)


def failed_jobs(api: Api, reg: _Registry) -> tuple[list[dict[str, Any]], int]:
    """The newest UI_PAGE_SIZE failed webhook jobs and how many there are."""
    registry = reg.registry
    total = registry.count
    ids = registry.get_job_ids(0, UI_PAGE_SIZE - 1, desc=True)
    jobs = []
    for job in Job.fetch_many(ids, connection=reg.conn):
        if job is None:
            continue
        args = repr(job.args)[:EXCERPT]
        last = job.latest_result()
        error = ((last.exc_string if last is not None else None) or "")[-EXCERPT:]
        jobs.append({"id": job.id, "function": job.func_name, "args": args, "error": error,
                     "endedAt": job.ended_at.isoformat() if job.ended_at else None})
    return jobs, total


class Operations(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api
        self.reg = _Registry(api)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.page(req, resp)

    def page(self, req: falcon.Request, resp: falcon.Response, new_key: dict[str, Any] | None = None,
             status: int = 200) -> None:
        problems, report = health.readiness(self.api.store, self.api.settings.queue_name)
        jobs, jobs_total = failed_jobs(self.api, self.reg)
        api_keys = self.api.store.apikeys.list() if req.context.ui.bootstrap else None
        render(req, resp, "ops.html", status, problems=problems, report=report, jobs=jobs, jobs_total=jobs_total,
               api_keys=api_keys, new_key=new_key)


class Requeue(UiResource):
    def __init__(self, api: Api) -> None:
        self.reg = _Registry(api)

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        def work() -> str:
            registry = self.reg.registry
            if job_id not in registry:
                raise errors.NotFound("Failed job not found (already requeued or expired)")
            registry.requeue(job_id)
            return "/ui/ops#jobs"
        _act(req, resp, work)


class CreateKey(UiResource):
    """A new named key, shown once on the page this POST answers (never stored in clear, never again)."""

    def __init__(self, api: Api, page: Operations) -> None:
        self.api = api
        self.ops = page

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            _require_bootstrap(req)
            data = keys.CREATE.validate(typed(form(req)))
            row = self.api.store.apikeys.create(data["name"])
        except errors.LoopError as exc:
            fail(req, resp, exc)
            return
        self.ops.page(req, resp, new_key=row, status=201)


class RevokeKey(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        def work() -> str:
            _require_bootstrap(req)
            self.api.store.apikeys.delete(key_id)
            return "/ui/ops#keys"
        _act(req, resp, work)


__all__ = ["CreateKey", "Operations", "Requeue", "RevokeKey"]
