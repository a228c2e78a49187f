"""Human overrides: the dashboard's forms. Each validates with the API's own schema, calls the
same store service as the API route, then redirects (POST/redirect/GET) or shows the API's error.
The Gate middleware has already checked the session and the CSRF token."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from api.http import Api
from api.resources import comments, issues, relations
from api.ui.base import UiResource, fail, form, redirect, typed
from loop import errors


def _act(req: falcon.Request, resp: falcon.Response, work: Callable[[], str]) -> None:
    """Run ``work`` (which answers where to go next); a refused change shows the API's error."""
    try:
        location = work()
    except errors.LoopError as exc:
        fail(req, resp, exc)
        return
    raise redirect(location)


def _issue_id(api: Api, ref: str) -> str:
    """An issue id from an id or a number (``12`` or ``#12``): people type numbers."""
    ref = ref.strip().lstrip("#")
    if ref.isdigit() and len(ref) <= 18:
        return api.store.issues.id_by_number(int(ref)) or ref
    return ref


class CreateIssue(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        def work() -> str:
            data = issues.CREATE.validate(typed(form(req), ints=("priority",)))
            return f"/ui/issues/{self.api.store.issues.create(data)['id']}"
        _act(req, resp, work)


class UpdateIssue(UiResource):
    """Status, priority, type (and ``cancel``: status ``canceled``)."""

    def __init__(self, api: Api, cancel: bool = False) -> None:
        self.api = api
        self.cancel = cancel

    def on_post(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        def work() -> str:
            fields = {"status": "canceled"} if self.cancel else typed(form(req), ints=("priority",))
            self.api.store.issues.update(issue_id, issues.UPDATE.validate(fields))
            return f"/ui/issues/{issue_id}"
        _act(req, resp, work)


class Comment(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        session = req.context.ui

        def work() -> str:
            data = typed(form(req))
            data.update(authorName=session.key_name, authorType="human")
            self.api.store.comments.create(issue_id, comments.CREATE.validate(data), key_name=session.key_name)
            return f"/ui/issues/{issue_id}#comments"
        _act(req, resp, work)


class AddRelation(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        def work() -> str:
            data = typed(form(req))
            if "relatedIssueId" in data:
                data["relatedIssueId"] = _issue_id(self.api, data["relatedIssueId"])
            data = relations.CREATE.validate(data)
            self.api.store.relations.create(issue_id, data["type"], data["relatedIssueId"])
            return f"/ui/issues/{issue_id}#relations"
        _act(req, resp, work)


class RemoveRelation(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, relation_id: str) -> None:
        def work() -> str:
            row = self.api.store.relations.delete(relation_id)
            return f"/ui/issues/{row['issueId']}#relations"
        _act(req, resp, work)


class ReleaseClaim(UiResource):
    """A person takes a claim back from an agent: released (no strike), the issue back in the queue."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        name = req.context.ui.key_name

        def work() -> str:
            held = self.api.store.dispatch.get_session(session_id)
            # The operator acts for the holder (the API lets only the holder release).
            row = self.api.store.dispatch.release(session_id, str(held["agentName"]), None,
                                                  f"released from the dashboard by {name}")
            return f"/ui/issues/{row['issueId']}#sessions"
        _act(req, resp, work)


class Promote(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response, template_id: str, version_id: str) -> None:
        def work() -> str:
            self.api.store.prompts.versions.promote(template_id, version_id)
            return f"/ui/prompts/{template_id}"
        _act(req, resp, work)
