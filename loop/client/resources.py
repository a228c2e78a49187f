"""The SDK's resource groups: one class per area of the API, reached as ``client.issues``,
``client.dispatch`` and so on. Methods return the JSON the server sends (dicts with camelCase
keys), unwrapped from the ``{"data": ...}`` envelope; lists return a :class:`Page` and have an
``iter_*`` twin that pages through everything with limit/offset.

Keyword arguments may be given in snake_case (``parent_id``) or camelCase (``parentId``); they
are sent in camelCase. In ``update`` calls ``None`` means "set to null".
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json as jsonlib
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loop.client.transport import Response, RetryPolicy, Transport

Json = dict[str, Any]
Rows = list[Json]
CLAIM_HEADER = "X-Loop-Claim-Token"
DEFAULT_PAGE_SIZE = 100


@dataclass
class Page:
    """One page of a list: its rows and the total number of rows matching the filters."""

    data: list[Json]
    total: int
    limit: int | None = None
    offset: int = 0
    extra: Json = field(default_factory=dict)

    def __iter__(self) -> Iterator[Json]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def wire(fields: Mapping[str, Any], drop_none: bool) -> Json:
    return {camel(k): v for k, v in fields.items() if not (drop_none and v is None)}


def seg(value: str) -> str:
    """An id as one URL path segment (ids are opaque strings)."""
    if not value:
        raise ValueError("an id must be a non-empty string")
    return urllib.parse.quote(str(value), safe="")


def paginate(fetch: Callable[[int, int], Page], page_size: int = DEFAULT_PAGE_SIZE,
             max_items: int | None = None) -> Iterator[Json]:
    """Every row, page by page; stops at an empty page or once ``offset >= total``."""
    offset = 0
    seen = 0
    while True:
        page = fetch(page_size, offset)
        if not page.data:
            return
        for row in page.data:
            if max_items is not None and seen >= max_items:
                return
            seen += 1
            yield row
        offset += len(page.data)
        if offset >= page.total:
            return


class Resource:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def _call(self, method: str, path: str, **kw: Any) -> Response:
        return self.t.request(method, path, **kw)

    def _data(self, method: str, path: str, **kw: Any) -> Any:
        body = self._call(method, path, **kw).body
        return body.get("data") if isinstance(body, dict) and "data" in body else body

    def _page(self, path: str, query: Mapping[str, Any], limit: int | None, offset: int) -> Page:
        q = {**query, "limit": limit, "offset": offset or None}
        body = self._call("GET", path, query=q).body or {}
        data = body.get("data") or []
        total = body.get("total")
        extra = {k: v for k, v in body.items() if k not in ("data", "total")}
        return Page(list(data), int(total) if total is not None else len(data), limit, offset, extra)


class _Crud(Resource):
    """List/iter/get/create/update/delete over ``/api/<name>``."""

    path = ""

    def list(self, limit: int | None = None, offset: int = 0) -> Page:
        return self._page(self.path, {}, limit, offset)

    def iter(self, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Json]:
        return paginate(lambda lim, off: self.list(lim, off), page_size)

    def get(self, row_id: str) -> Json:
        out: Json = self._data("GET", f"{self.path}/{seg(row_id)}")
        return out

    def _create(self, fields: Mapping[str, Any], idempotency_key: str | None = None) -> Json:
        out: Json = self._data("POST", self.path, json=wire(fields, True), idempotency_key=idempotency_key)
        return out

    def update(self, row_id: str, **fields: Any) -> Json:
        out: Json = self._data("PATCH", f"{self.path}/{seg(row_id)}", json=wire(fields, False))
        return out

    def delete(self, row_id: str) -> None:
        self._call("DELETE", f"{self.path}/{seg(row_id)}")


class Issues(_Crud):
    path = "/api/issues"

    def list(self, limit: int | None = None, offset: int = 0, *, status: str | Sequence[str] | None = None,
             type: str | Sequence[str] | None = None, project_id: str | None = None, label_id: str | None = None,
             priority: int | None = None, parent_id: str | None = None) -> Page:
        q = {"status": status, "type": type, "projectId": project_id, "labelId": label_id,
             "priority": priority, "parentId": parent_id}
        return self._page(self.path, q, limit, offset)

    def iter(self, page_size: int = DEFAULT_PAGE_SIZE, **filters: Any) -> Iterator[Json]:
        return paginate(lambda lim, off: self.list(lim, off, **filters), page_size)

    def create(self, title: str, type: str = "task", *, idempotency_key: str | None = None,
               **fields: Any) -> Json:
        """``fields``: description, status, priority, parent_id, project_id, signal_source,
        signal_payload, hypothesis, label_ids, not_before (ISO 8601), outcome."""
        return self._create({"title": title, "type": type, **fields}, idempotency_key)

    def update(self, row_id: str, *, claim_token: str | None = None, **fields: Any) -> Json:
        """Patch an issue. With ``claim_token`` the write is fenced: the server rejects it
        (409) once the claim has expired or moved to another agent."""
        headers = {CLAIM_HEADER: claim_token} if claim_token else None
        body = wire(fields, False)
        out: Json = self._data("PATCH", f"{self.path}/{seg(row_id)}", json=body, headers=headers)
        return out

    def complete(self, row_id: str, summary: str | None = None, *, claim_token: str | None = None,
                 **fields: Any) -> Json:
        """Mark an issue done, storing the agent's summary (and commits, pull_requests...)."""
        extra = {"agent_summary": summary} if summary is not None else {}
        return self.update(row_id, claim_token=claim_token, status="done", **extra, **fields)

    def add_label(self, issue_id: str, label_id: str) -> Any:
        return self._data("POST", f"{self.path}/{seg(issue_id)}/labels", json={"labelId": label_id})

    def remove_label(self, issue_id: str, label_id: str) -> None:
        self._call("DELETE", f"{self.path}/{seg(issue_id)}/labels/{seg(label_id)}")

    def sessions(self, issue_id: str, limit: int | None = None, offset: int = 0) -> Page:
        """The agent sessions (claims) of an issue, oldest first."""
        return self._page(f"{self.path}/{seg(issue_id)}/sessions", {}, limit, offset)

    def comments(self, issue_id: str) -> Rows:
        out: Rows = self._data("GET", f"{self.path}/{seg(issue_id)}/comments") or []
        return out

    def comment(self, issue_id: str, body: str, *, author_name: str = "loop-sdk", author_type: str = "agent",
                parent_id: str | None = None) -> Json:
        payload = wire({"body": body, "author_name": author_name, "author_type": author_type,
                        "parent_id": parent_id}, True)
        out: Json = self._data("POST", f"{self.path}/{seg(issue_id)}/comments", json=payload)
        return out

    def relate(self, issue_id: str, type: str, related_issue_id: str) -> Json:
        out: Json = self._data("POST", f"{self.path}/{seg(issue_id)}/relations",
                               json={"type": type, "relatedIssueId": related_issue_id})
        return out


class Relations(Resource):
    def create(self, issue_id: str, type: str, related_issue_id: str) -> Json:
        """``type``: blocks, blocked_by, related or duplicate."""
        return Issues(self.t).relate(issue_id, type, related_issue_id)

    def delete(self, relation_id: str) -> None:
        self._call("DELETE", f"/api/relations/{seg(relation_id)}")


class Comments(Resource):
    def list(self, issue_id: str) -> Rows:
        return Issues(self.t).comments(issue_id)

    def create(self, issue_id: str, body: str, **kw: Any) -> Json:
        return Issues(self.t).comment(issue_id, body, **kw)


class Projects(_Crud):
    path = "/api/projects"

    def create(self, name: str, **fields: Any) -> Json:
        """``fields``: description, status, health, goal_id."""
        return self._create({"name": name, **fields})


class Goals(_Crud):
    path = "/api/goals"

    def create(self, title: str, **fields: Any) -> Json:
        """``fields``: description, metric, target_value, current_value, unit, status, project_id,
        direction (increase or decrease)."""
        return self._create({"title": title, **fields})

    def record(self, goal_id: str, value: float, *, at: str | None = None, source: str | None = None) -> Json:
        """Record a reading (``at``: ISO-8601, default now); returns the goal after it (the latest
        reading by ``at`` is its ``currentValue``; it may become ``achieved`` or ``active`` again)."""
        body = wire({"value": value, "at": at, "source": source}, True)
        out: Json = self._data("POST", f"{self.path}/{seg(goal_id)}/readings", json=body)
        return out

    def readings(self, goal_id: str, limit: int | None = None, offset: int = 0) -> Page:
        """The goal's readings ``{value, at, source}``, newest ``at`` first (the last 1,000 are kept)."""
        return self._page(f"{self.path}/{seg(goal_id)}/readings", {}, limit, offset)

    def iter_readings(self, goal_id: str, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Json]:
        return paginate(lambda lim, off: self.readings(goal_id, lim, off), page_size)


class Labels(_Crud):
    path = "/api/labels"

    def create(self, name: str, color: str = "#6b7280") -> Json:
        return self._create({"name": name, "color": color})

    def find(self, name: str) -> Json | None:
        """The live label with this name, if any."""
        return next((lb for lb in self.iter() if lb.get("name") == name), None)


class Signals(Resource):
    path = "/api/signals"

    def ingest(self, source: str, type: str, severity: str, payload: Mapping[str, Any] | None = None, *,
               source_id: str | None = None, project_id: str | None = None, fingerprint: str | None = None,
               goal_id: str | None = None, idempotency_key: str | None = None) -> Json:
        """Create a signal and its triage issue; returns ``{"signal", "issue", "grouped"}``.

        ``fingerprint`` (1-200 chars) groups: while the issue its first signal opened is open, a
        signal with the same fingerprint joins it (``grouped: true``, the issue's ``signalCount``
        grows) instead of opening another. ``goal_id`` records ``payload["value"]`` (a finite
        number) as a reading of that goal."""
        body = wire({"source": source, "type": type, "severity": severity, "payload": dict(payload or {}),
                     "source_id": source_id, "project_id": project_id, "fingerprint": fingerprint,
                     "goal_id": goal_id}, True)
        out: Json = self._data("POST", self.path, json=body, idempotency_key=idempotency_key)
        return out

    def list(self, limit: int | None = None, offset: int = 0, *, source: str | None = None,
             severity: str | None = None, project_id: str | None = None) -> Page:
        """Signals, each with ``groupCount`` (its issue's ``signalCount``)."""
        return self._page(self.path, {"source": source, "severity": severity, "projectId": project_id},
                          limit, offset)

    def iter(self, page_size: int = DEFAULT_PAGE_SIZE, **filters: Any) -> Iterator[Json]:
        return paginate(lambda lim, off: self.list(lim, off, **filters), page_size)

    def get(self, signal_id: str) -> Json:
        out: Json = self._data("GET", f"{self.path}/{seg(signal_id)}")
        return out


class Templates(_Crud):
    path = "/api/templates"

    def create(self, slug: str, name: str, **fields: Any) -> Json:
        """``fields``: description, conditions, specificity, project_id."""
        return self._create({"slug": slug, "name": name, **fields})

    def versions(self, template_id: str, limit: int | None = None, offset: int = 0) -> Page:
        return self._page(f"{self.path}/{seg(template_id)}/versions", {}, limit, offset)

    def iter_versions(self, template_id: str, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Json]:
        return paginate(lambda lim, off: self.versions(template_id, lim, off), page_size)

    def create_version(self, template_id: str, content: str, *, changelog: str | None = None,
                       author_type: str = "human", author_name: str = "loop-sdk") -> Json:
        body = wire({"content": content, "changelog": changelog, "author_type": author_type,
                     "author_name": author_name}, True)
        out: Json = self._data("POST", f"{self.path}/{seg(template_id)}/versions", json=body)
        return out

    def promote(self, template_id: str, version_id: str) -> Json:
        out: Json = self._data("POST", f"{self.path}/{seg(template_id)}/versions/{seg(version_id)}/promote")
        return out

    def experiment(self, template_id: str) -> Json:
        """Active vs candidate evidence and the decision rule's verdict (docs/prompts.md, "Experiments")."""
        out: Json = self._data("GET", f"{self.path}/{seg(template_id)}/experiment")
        return out

    def set_candidate(self, template_id: str, version_id: str, share: int, *, auto_promote: bool = False) -> Json:
        """Try ``version_id`` on ``share`` percent (1-50) of the template's dispatches."""
        body = {"versionId": version_id, "share": share, "autoPromote": auto_promote}
        out: Json = self._data("POST", f"{self.path}/{seg(template_id)}/candidate", json=body)
        return out

    def clear_candidate(self, template_id: str) -> Json:
        out: Json = self._data("DELETE", f"{self.path}/{seg(template_id)}/candidate")
        return out

    def promote_candidate(self, template_id: str) -> Json:
        out: Json = self._data("POST", f"{self.path}/{seg(template_id)}/candidate/promote")
        return out

    def withdraw_candidate(self, template_id: str) -> Json:
        out: Json = self._data("POST", f"{self.path}/{seg(template_id)}/candidate/withdraw")
        return out

    def rollback(self, template_id: str) -> Json:
        """Re-activate the version the last promotion retired."""
        out: Json = self._data("POST", f"{self.path}/{seg(template_id)}/rollback")
        return out

    def history(self, template_id: str, limit: int | None = None, offset: int = 0) -> Page:
        """Decisions on the template's versions, newest first."""
        return self._page(f"{self.path}/{seg(template_id)}/history", {}, limit, offset)

    def reviews(self, template_id: str, limit: int | None = None, offset: int = 0) -> Page:
        return self._page(f"{self.path}/{seg(template_id)}/reviews", {}, limit, offset)

    def iter_reviews(self, template_id: str, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Json]:
        return paginate(lambda lim, off: self.reviews(template_id, lim, off), page_size)

    def preview(self, issue_id: str) -> Json:
        """Dry-run template selection and rendering: ``{issue, template, version, prompt[, message]}``."""
        body = self._call("GET", f"{self.path}/preview/{seg(issue_id)}").body or {}
        return {k: v for k, v in body.items() if k != "data"} if "issue" in body else dict(body.get("data") or {})


class Reviews(Resource):
    def create(self, version_id: str, issue_id: str, clarity: int, completeness: int, relevance: int, *,
               feedback: str | None = None, author_type: str = "agent") -> Json:
        """Review the prompt an agent was given (scores 1-5)."""
        body = wire({"version_id": version_id, "issue_id": issue_id, "clarity": clarity,
                     "completeness": completeness, "relevance": relevance, "feedback": feedback,
                     "author_type": author_type}, True)
        out: Json = self._data("POST", "/api/prompt-reviews", json=body)
        return out


class Dispatch(Resource):
    def next(self, project_id: str | None = None, *, retry: RetryPolicy | None = None) -> Json | None:
        """Claim the best eligible issue: ``{issue, prompt, meta, claim}``, or ``None`` when idle.

        Claiming is not idempotent, so this call is retried only when the server surely did not
        claim: on 429 and 503, and on connection errors before the request was sent (refused).
        """
        policy = retry or dataclasses.replace(self.t.retry, statuses=frozenset((429, 503)), unsent_only=True)
        body = self._call("GET", "/api/dispatch/next", query={"projectId": project_id}, retry=policy).body
        if not body:
            return None
        task = body if "issue" in body else body.get("data") or {}
        return {k: v for k, v in task.items() if k != "data"} or None

    def queue(self, limit: int | None = None, offset: int = 0, *, project_id: str | None = None) -> Page:
        return self._page("/api/dispatch/queue", {"projectId": project_id}, limit, offset)

    def iter_queue(self, page_size: int = DEFAULT_PAGE_SIZE, project_id: str | None = None) -> Iterator[Json]:
        return paginate(lambda lim, off: self.queue(lim, off, project_id=project_id), page_size)

    def scheduled(self, limit: int | None = None, offset: int = 0) -> Page:
        """Scheduled issues (``notBefore`` ahead), soonest first."""
        return self._page("/api/dispatch/scheduled", {}, limit, offset)

    def iter_scheduled(self, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Json]:
        return paginate(lambda lim, off: self.scheduled(lim, off), page_size)

    def session(self, session_id: str) -> Json:
        """One agent session (status, agentName, claimedAt, expiresAt, endedAt, summary, reason)."""
        out: Json = self._data("GET", f"/api/dispatch/claims/{seg(session_id)}")
        return out

    def heartbeat(self, session_id: str, token: str | None = None) -> Json:
        """Extend a claim's lease; returns the session (with its new ``expiresAt``)."""
        headers = {CLAIM_HEADER: token} if token else None
        body = {"token": token} if token else {}
        out: Json = self._data("POST", f"/api/dispatch/claims/{seg(session_id)}/heartbeat", json=body,
                               headers=headers)
        return out

    def release(self, session_id: str, token: str | None = None, reason: str | None = None,
                failed: bool = False) -> Json:
        """Give the issue back to the queue (``todo``), recording ``reason`` on the session.

        ``failed=True`` says the attempt failed: the session closes as ``failed`` and counts as a
        strike (after ``LOOP_MAX_LEASE_EXPIRIES`` strikes the server parks the issue for a human).
        """
        headers = {CLAIM_HEADER: token} if token else None
        body = wire({"token": token, "reason": reason, "failed": failed or None}, True)
        out: Json = self._data("POST", f"/api/dispatch/claims/{seg(session_id)}/release", json=body,
                               headers=headers)
        return out


class Dashboard(Resource):
    def stats(self) -> Json:
        out: Json = self._data("GET", "/api/dashboard/stats")
        return out

    def activity(self, limit: int | None = None) -> Page:
        return self._page("/api/dashboard/activity", {}, limit, 0)

    def prompts(self) -> Rows:
        out: Rows = self._data("GET", "/api/dashboard/prompts") or []
        return out


class Keys(Resource):
    """Named API keys (needs the bootstrap key)."""

    def list(self) -> Rows:
        out: Rows = self._data("GET", "/api/keys") or []
        return out

    def create(self, name: str) -> Json:
        """Create a key; the secret (``key``) is in the answer and never shown again."""
        out: Json = self._data("POST", "/api/keys", json={"name": name})
        return out

    def revoke(self, key_id_or_name: str) -> None:
        self._call("DELETE", f"/api/keys/{seg(key_id_or_name)}")


class Webhooks(Resource):
    """Send provider webhooks to ``/api/signals/{github,sentry,posthog}``, signed the way each
    provider signs them (bridges, replays, integration tests). Returns ``{deliveryId, status}``
    where status is ``queued``, ``duplicate`` (same delivery id again) or ``ignored`` (GitHub ping)."""

    def _send(self, provider: str, body: bytes, headers: dict[str, str]) -> Json:
        out: Json = self._data("POST", f"/api/signals/{provider}", data=body, auth=False,
                               headers={"Content-Type": "application/json", **headers})
        return out

    @staticmethod
    def _body(payload: Mapping[str, Any]) -> bytes:
        return jsonlib.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def _hmac(secret: str, body: bytes) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def github(self, payload: Mapping[str, Any], secret: str, *, event: str = "issues",
               delivery_id: str | None = None) -> Json:
        body = self._body(payload)
        return self._send("github", body, {
            "X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + self._hmac(secret, body)})

    def sentry(self, payload: Mapping[str, Any], secret: str, *, resource: str = "issue",
               request_id: str | None = None) -> Json:
        body = self._body(payload)
        return self._send("sentry", body, {
            "Sentry-Hook-Resource": resource, "Request-ID": request_id or str(uuid.uuid4()),
            "Sentry-Hook-Signature": self._hmac(secret, body)})

    def posthog(self, payload: Mapping[str, Any], secret: str) -> Json:
        return self._send("posthog", self._body(payload), {"X-PostHog-Secret": secret})
