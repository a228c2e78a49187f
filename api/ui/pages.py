"""The dashboard's read pages. Each reads one page of data through the store services (a bounded
number of round trips whatever the backlog) and renders a template."""

from __future__ import annotations

import difflib
from typing import Any

import falcon
import orjson

from api.http import Api
from api.resources.issues import LIST_QUERY
from api.ui.base import UiResource, redirect, render
from api.ui.blocked import blocked_page
from loop import errors, health
from loop.models import ISSUE_STATUSES, ISSUE_TYPES, RELATION_TYPES
from loop.store.dashboard import DashboardService
from loop.store.daystats import DayStats
from loop.tunables import UI_PAGE_SIZE

FUNNEL = ("signal", "hypothesis", "plan", "task", "monitor")
PLURALS = {"signal": "signals", "hypothesis": "hypotheses", "plan": "plans", "task": "tasks", "monitor": "monitors"}


def _offset(req: falcon.Request, name: str = "offset") -> int:
    raw = req.get_param(name) or "0"
    return int(raw) if raw.isdigit() and len(raw) <= 12 else 0


def _pages(total: int, offset: int) -> dict[str, Any]:
    return {"total": total, "offset": offset, "size": UI_PAGE_SIZE,
            "prev": max(offset - UI_PAGE_SIZE, 0) if offset > 0 else None,
            "next": offset + UI_PAGE_SIZE if offset + UI_PAGE_SIZE < total else None}


class Overview(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api
        self.dashboard = DashboardService(api.store)
        self.days = DayStats(api.store)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        stats = self.dashboard.stats()
        problems, report = health.readiness(self.api.store, self.api.settings.queue_name)
        render(req, resp, "overview.html", stats=stats, problems=problems, report=report,
               statuses=ISSUE_STATUSES, funnel=FUNNEL, plurals=PLURALS, activity=self.dashboard.activity(10),
               window=self.days.window())


class Counters(UiResource):
    """The overview's live counters, refreshed by app.js every few seconds."""

    fragment = True

    def __init__(self, api: Api) -> None:
        self.dashboard = DashboardService(api.store)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        render(req, resp, "_counters.html", stats=self.dashboard.stats(), statuses=ISSUE_STATUSES)


class Queue(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        offset = _offset(req)
        items, total = self.api.store.dispatch.queue(None, UI_PAGE_SIZE, offset)
        boffset = _offset(req, "blocked")
        blocked, blocked_total = blocked_page(self.api.store, UI_PAGE_SIZE, boffset)
        soffset = _offset(req, "scheduled")
        scheduled, scheduled_total = self.api.store.dispatch.scheduled(UI_PAGE_SIZE, soffset)
        render(req, resp, "queue.html", items=items, pages=_pages(total, offset),
               blocked=blocked, blocked_pages=_pages(blocked_total, boffset),
               scheduled=[self.api.store.issues.wire(i) for i in scheduled],
               scheduled_pages=_pages(scheduled_total, soffset))


class Issues(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = {k: v for k, v in req.params.items() if v not in ("", [])}
        number = str(params.pop("number", "")).strip().lstrip("#")
        if number.isdigit():  # the header's "go to issue" box
            raise redirect(f"/ui/issues/{number}")
        params["limit"] = str(UI_PAGE_SIZE)
        try:
            q = LIST_QUERY.validate(params)
        except errors.ValidationError as exc:
            render(req, resp, "error.html", 400, message=exc.message, details=exc.details or {}, back="/ui/issues")
            return
        rows, total = self.api.store.issues.list(q, q["limit"], q["offset"])
        keep = {k: v for k, v in params.items() if k not in ("limit", "offset")}
        render(req, resp, "issues.html", issues=[self.api.store.issues.wire(r) for r in rows],
               pages=_pages(total, q["offset"]), filters=keep, statuses=ISSUE_STATUSES, types=ISSUE_TYPES)


class IssueDetail(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, issue_id: str) -> None:
        store = self.api.store
        if issue_id.isdigit() and len(issue_id) <= 18:
            issue_id = store.issues.id_by_number(int(issue_id)) or issue_id
        try:
            issue = store.issues.detail(issue_id)
        except errors.NotFound as exc:
            render(req, resp, "error.html", 404, message=exc.message, details={}, back="/ui/issues")
            return
        sessions, sessions_total = store.dispatch.list_sessions(issue_id, 0, UI_PAGE_SIZE)
        try:
            preview: dict[str, Any] = store.prompts.preview(issue_id)
        except errors.LoopError as exc:
            preview = {"prompt": None, "message": exc.message}
        payload = issue.get("signalPayload")
        render(req, resp, "issue.html", issue=issue, comments=store.comments.threaded(issue_id),
               sessions=list(reversed(sessions)), sessions_total=sessions_total, preview=preview,
               payload=orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() if payload else None,
               hypothesis=orjson.dumps(issue["hypothesis"], option=orjson.OPT_INDENT_2).decode()
               if issue.get("hypothesis") else None,
               statuses=ISSUE_STATUSES, types=ISSUE_TYPES, relation_types=RELATION_TYPES, now=store.now())


class Signals(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        offset = _offset(req)
        signals = self.api.store.signals
        rows, total = signals.list({}, UI_PAGE_SIZE, offset)
        render(req, resp, "signals.html", signals=[signals.wire(r) for r in rows], pages=_pages(total, offset))


class Goals(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        store = self.api.store
        goals, goals_total = store.goals.list(UI_PAGE_SIZE, 0)
        projects, projects_total = store.projects.list(UI_PAGE_SIZE, 0)
        render(req, resp, "goals.html", goals=[store.goals.wire(g) for g in goals], goals_total=goals_total,
               projects=[{**store.projects.wire(p), "counts": store.issues.counts_by_project(p["id"])}
                         for p in projects], projects_total=projects_total)


class GoalDetail(UiResource):
    """One goal: progress, its readings as a chart (the newest ``UI_PAGE_SIZE``) and a table."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, goal_id: str) -> None:
        goals = self.api.store.goals
        try:
            goal = goals.wire(goals.get_live(goal_id))
            readings, total = goals.readings(goal_id, UI_PAGE_SIZE, 0)
        except errors.NotFound as exc:
            render(req, resp, "error.html", 404, message=exc.message, details={}, back="/ui/goals")
            return
        render(req, resp, "goal.html", goal=goal, readings=readings, total=total,
               chart=reading_chart(list(reversed(readings)), goal.get("targetValue")))


def reading_chart(readings: list[dict[str, Any]], target: float | None) -> dict[str, Any] | None:
    """Polyline geometry of ``readings`` (oldest first) in a 600x160 box, the target as a line."""
    if not readings:
        return None
    values = [float(r["value"]) for r in readings] + ([float(target)] if target is not None else [])
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = 560 / max(len(readings) - 1, 1)

    def y(v: float) -> float:
        return round(150 - (v - low) / span * 130, 1)

    points = [(round(30 + n * step, 1), y(float(r["value"])), r) for n, r in enumerate(readings)]
    return {"points": points, "polyline": " ".join(f"{x},{py}" for x, py, _ in points),
            "target": y(float(target)) if target is not None else None, "low": low, "high": high}


class Prompts(UiResource):
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        render(req, resp, "prompts.html", entries=self.api.store.prompts.dashboard())


class PromptTemplate(UiResource):
    """One template: its versions, each one's stats, and the diff of two (``?a=&b=`` version ids)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: str) -> None:
        prompts = self.api.store.prompts
        try:
            template = prompts.template_detail(template_id)
        except errors.NotFound as exc:
            render(req, resp, "error.html", 404, message=exc.message, details={}, back="/ui/prompts")
            return
        rows, total = prompts.versions.list(template_id, UI_PAGE_SIZE, 0)
        versions = [prompts.versions.wire(v) for v in rows]
        by_id = {v["id"]: v for v in versions}
        a, b = by_id.get(req.get_param("a") or ""), by_id.get(req.get_param("b") or "")
        diff = None
        if a and b:
            diff = list(difflib.unified_diff(str(a["content"]).splitlines(), str(b["content"]).splitlines(),
                                             f"v{a['version']}", f"v{b['version']}", lineterm=""))
        render(req, resp, "prompt.html", tpl=template, versions=versions, total=total, diff=diff, a=a, b=b)
