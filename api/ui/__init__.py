"""The dashboard (docs/dashboard.md): server-rendered pages under ``/ui`` for people.

``routes(api, root)`` lists ``(path, resource)`` pairs that ``api.app.create_app`` adds to the
router outside the API's route table (they are not API operations: no OpenAPI entry), marks
public to the Bearer middleware, and guards with :class:`api.ui.base.Gate` instead.
"""

from __future__ import annotations

from api.http import Api
from api.ui import actions, ops, pages
from api.ui.auth import Home, Login, Logout, Static
from api.ui.base import Gate
from api.ui.session import Signer

__all__ = ["Gate", "Signer", "routes"]


def routes(api: Api, signer: Signer, root: object) -> list[tuple[str, object]]:
    operations = ops.Operations(api)
    return [
        ("/", Home(root)),
        ("/ui/login", Login(api, signer)),
        ("/ui/logout", Logout()),
        ("/ui/static/{name}", Static()),
        ("/ui", pages.Overview(api)),
        ("/ui/fragments/counters", pages.Counters(api)),
        ("/ui/queue", pages.Queue(api)),
        ("/ui/issues", pages.Issues(api)),
        ("/ui/issues/new", actions.CreateIssue(api)),
        ("/ui/issues/{issue_id}", pages.IssueDetail(api)),
        ("/ui/issues/{issue_id}/update", actions.UpdateIssue(api)),
        ("/ui/issues/{issue_id}/cancel", actions.UpdateIssue(api, cancel=True)),
        ("/ui/issues/{issue_id}/comments", actions.Comment(api)),
        ("/ui/issues/{issue_id}/relations", actions.AddRelation(api)),
        ("/ui/relations/{relation_id}/delete", actions.RemoveRelation(api)),
        ("/ui/sessions/{session_id}/release", actions.ReleaseClaim(api)),
        ("/ui/signals", pages.Signals(api)),
        ("/ui/goals", pages.Goals(api)),
        ("/ui/goals/{goal_id}", pages.GoalDetail(api)),
        ("/ui/prompts", pages.Prompts(api)),
        ("/ui/prompts/{template_id}", pages.PromptTemplate(api)),
        ("/ui/prompts/{template_id}/versions/{version_id}/promote", actions.Promote(api)),
        ("/ui/ops", operations),
        ("/ui/ops/jobs/{job_id}/requeue", ops.Requeue(api)),
        ("/ui/ops/keys", ops.CreateKey(api, operations)),
        ("/ui/ops/keys/{key_id}/revoke", ops.RevokeKey(api)),
    ]
