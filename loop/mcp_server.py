"""Loop's MCP server: the agent loop as MCP tools, over stdio (``loop mcp``) or streamable
HTTP (``loop mcp --http``, its own process, Bearer-authenticated).

Every tool calls the Loop HTTP API through :class:`loop.client.LoopClient`. Over stdio the
client uses the configured URL and key; over HTTP each request is made with the caller's own
Bearer key, so sessions and comments carry the calling agent's key name and the MCP process
itself holds no secret. A failed API call becomes a tool error whose text is the server's
message (``Loop API 404: Issue not found``), never a generic failure.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from loop import __version__
from loop.client import AuthError, LoopClient, LoopClientError

log = logging.getLogger("loop.mcp")
#: Loggers that write a line per MCP request or per API call at INFO.
QUIET_LOGGERS = ("httpx", "httpcore", "mcp.server.streamable_http", "mcp.server.streamable_http_manager",
                 "mcp.server.lowlevel.server")
Json = dict[str, Any]
ClientFactory = Callable[[Context | None], LoopClient]

INSTRUCTIONS = """\
Loop is the work queue you pull tasks from. The loop:
1. loop_get_next_task claims the best eligible issue and returns its prompt and a claim
   {sessionId, token, expiresAt}. The claim is a lease: call loop_heartbeat before it expires
   on long work.
2. Do the work the prompt describes. Record progress with loop_create_comment; split work with
   loop_create_issue (parent_id) and follow-up signals with loop_ingest_signal (a fingerprint groups
   repeats into one issue); measure goals with loop_record_goal_reading.
3. Finish with loop_complete_task (issue_id, summary, claim_token): it reports the issues your
   work unblocked. If you cannot finish, loop_release_task hands the issue back with a reason
   (failed=true when your attempt failed: repeated failures park the issue for a human).
4. Rate the prompt you were given with loop_submit_review (meta.versionId of the task).
"""


def _fail(exc: LoopClientError) -> ToolError:
    status = f" {exc.status}" if exc.status else ""
    return ToolError(f"Loop API{status}: {exc}")


def _brief(issue: Json) -> Json:
    return {k: issue.get(k) for k in ("id", "number", "title", "type", "status", "priority")}


def _some(**fields: Any) -> Json:
    return {k: v for k, v in fields.items() if v is not None}


def unblocked_by(loop: LoopClient, issue_id: str, before: set[str], blocks: set[str]) -> list[Json]:
    """Issues that entered the dispatch queue since ``before`` because ``issue_id`` is resolved.

    An issue counts when it is newly eligible AND this issue blocked it: either "this blocks it"
    (``blocks``, read before completing) or "it blocked_by this" (its own relation rows).
    """
    out = []
    for item in loop.dispatch.iter_queue(page_size=200):
        issue = item["issue"]
        if issue["id"] in before:
            continue
        if issue["id"] in blocks:
            out.append(_brief(issue))
            continue
        relations = loop.issues.get(issue["id"]).get("relations") or []
        if any(r["type"] == "blocked_by" and r["relatedIssueId"] == issue_id for r in relations):
            out.append(_brief(issue))
    return out


def build_server(client_for: ClientFactory | LoopClient, name: str = "loop") -> MCPServer:
    """The MCP server with Loop's tools; ``client_for`` gives the SDK client for a request."""
    factory: ClientFactory = (lambda _ctx: client_for) if isinstance(client_for, LoopClient) else client_for
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS, version=__version__)

    def tool(fn: Callable[..., Json]) -> Callable[..., Json]:
        # The docstring is the description the model reads: without code indentation.
        return server.tool(description=inspect.cleandoc(fn.__doc__ or ""))(fn)

    def call(ctx: Context | None, fn: Callable[[LoopClient], Any]) -> Any:
        try:
            return fn(factory(ctx))
        except LoopClientError as exc:
            raise _fail(exc) from None

    @tool
    def loop_get_next_task(ctx: Context, project_id: str | None = None) -> Json:
        """Claim the highest-priority unblocked issue. Returns {issue, prompt, meta, claim} where claim is
        {sessionId, token, expiresAt}; {issue: null} when there is no work."""
        task = call(ctx, lambda loop: loop.dispatch.next(project_id))
        if task is None:
            return {"issue": None, "message": "No eligible issues: the queue is empty or everything is blocked."}
        return dict(task)

    @tool
    def loop_complete_task(ctx: Context, issue_id: str, summary: str, claim_token: str | None = None,
                           commits: list[Json] | None = None, pull_requests: list[Json] | None = None,
                           outcome: str | None = None) -> Json:
        """Mark an issue done with a summary of what was done (and optional commits [{sha, message}] and
        pull_requests [{number, title, url}]). Pass the claim token from loop_get_next_task. For a monitor
        or hypothesis give outcome: validated|invalidated|inconclusive (a monitor's invalidated outcome
        files a new signal). Returns the issue and the issues this completion unblocked (now dispatchable)."""

        def run(loop: LoopClient) -> Json:
            detail = loop.issues.get(issue_id)
            blocks = {r["relatedIssueId"] for r in detail.get("relations") or [] if r["type"] == "blocks"}
            before = {item["issue"]["id"] for item in loop.dispatch.iter_queue(page_size=200)}
            issue = loop.issues.complete(issue_id, summary, claim_token=claim_token,
                                         **_some(commits=commits, pull_requests=pull_requests, outcome=outcome))
            return {"issue": issue, "unblocked": unblocked_by(loop, issue_id, before, blocks)}

        result: Json = call(ctx, run)
        return result

    @tool
    def loop_create_issue(ctx: Context, title: str, type: str = "task", description: str | None = None,
                          status: str | None = None, priority: int | None = None, parent_id: str | None = None,
                          project_id: str | None = None, label_ids: list[str] | None = None,
                          not_before: str | None = None) -> Json:
        """Create an issue. type: signal|hypothesis|plan|task|monitor. status defaults to triage; use todo to
        make it dispatchable. priority: 1 urgent .. 4 low, 0 none. parent_id makes it a sub-issue.
        not_before (ISO 8601): dispatch waits until then (a monitor's check time)."""
        row: Json = call(ctx, lambda loop: loop.issues.create(title, type, **_some(
            description=description, status=status, priority=priority, parent_id=parent_id,
            project_id=project_id, label_ids=label_ids, not_before=not_before)))
        return row

    @tool
    def loop_update_issue(ctx: Context, issue_id: str, title: str | None = None, description: str | None = None,
                          status: str | None = None, priority: int | None = None, type: str | None = None,
                          project_id: str | None = None, parent_id: str | None = None,
                          agent_summary: str | None = None, claim_token: str | None = None,
                          not_before: str | None = None, outcome: str | None = None) -> Json:
        """Change fields of an issue (only those given). status: triage|backlog|todo|in_progress|done|canceled.
        Re-schedule a check: status todo + not_before (ISO 8601). outcome (monitors, hypotheses):
        validated|invalidated|inconclusive."""
        fields = _some(title=title, description=description, status=status, priority=priority, type=type,
                       project_id=project_id, parent_id=parent_id, agent_summary=agent_summary,
                       not_before=not_before, outcome=outcome)
        if not fields:
            raise ToolError("Give at least one field to change.")
        row: Json = call(ctx, lambda loop: loop.issues.update(issue_id, claim_token=claim_token, **fields))
        return row

    @tool
    def loop_list_issues(ctx: Context, status: str | None = None, type: str | None = None,
                         project_id: str | None = None, label_id: str | None = None, priority: int | None = None,
                         parent_id: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        """List issues (oldest first). status and type accept comma-separated values, e.g. todo,in_progress.
        Returns {data, total}."""
        page = call(ctx, lambda loop: loop.issues.list(limit, offset, status=status, type=type,
                                                       project_id=project_id, label_id=label_id,
                                                       priority=priority, parent_id=parent_id))
        return {"data": page.data, "total": page.total}

    @tool
    def loop_get_issue(ctx: Context, issue_id: str) -> Json:
        """An issue with its parent, children, labels, relations, comments and agent sessions."""

        def run(loop: LoopClient) -> Json:
            detail = loop.issues.get(issue_id)
            detail["comments"] = loop.issues.comments(issue_id)
            try:
                detail["sessions"] = loop.issues.sessions(issue_id, 200).data
            except LoopClientError:
                detail["sessions"] = []
            return detail

        result: Json = call(ctx, run)
        return result

    @tool
    def loop_ingest_signal(ctx: Context, source: str, type: str, severity: str, payload: Json,
                           source_id: str | None = None, project_id: str | None = None,
                           fingerprint: str | None = None) -> Json:
        """Report a signal (an error, a metric change, an observation). It becomes an issue of type signal,
        in todo (dispatchable) unless the server runs with LOOP_SIGNALS_TO_TODO=false (then triage).
        severity: low|medium|high|critical. payload.message becomes the issue title. fingerprint (1-200
        chars) groups repeats: while the issue it opened is open, the same fingerprint joins that issue
        (grouped=true, its signalCount grows) instead of opening another. Returns {signal, issue, grouped}."""
        result: Json = call(ctx, lambda loop: loop.signals.ingest(source, type, severity, payload,
                                                                  source_id=source_id, project_id=project_id,
                                                                  fingerprint=fingerprint))
        return result

    @tool
    def loop_record_goal_reading(ctx: Context, goal_id: str, value: float, at: str | None = None,
                                 source: str | None = None) -> Json:
        """Record a measurement of a goal's metric (at: ISO-8601, default now). The latest reading by `at`
        becomes the goal's currentValue; a goal that meets its target becomes achieved. Returns the goal."""
        row: Json = call(ctx, lambda loop: loop.goals.record(goal_id, value, at=at, source=source))
        return row

    @tool
    def loop_list_goal_readings(ctx: Context, goal_id: str, limit: int = 20, offset: int = 0) -> Json:
        """A goal's readings {value, at, source}, newest first, paginated: {data, total}."""
        page = call(ctx, lambda loop: loop.goals.readings(goal_id, limit, offset))
        return {"data": page.data, "total": page.total}

    @tool
    def loop_create_comment(ctx: Context, issue_id: str, body: str, author_name: str = "agent",
                            parent_id: str | None = None) -> Json:
        """Comment on an issue as an agent (progress notes, findings, questions for humans)."""
        row: Json = call(ctx, lambda loop: loop.issues.comment(issue_id, body, author_name=author_name,
                                                               author_type="agent", parent_id=parent_id))
        return row

    @tool
    def loop_get_dashboard(ctx: Context) -> Json:
        """System overview: issue counts by status and type, goals, and dispatch (queueDepth = todo + backlog
        issues, active, done 24h)."""
        stats: Json = call(ctx, lambda loop: loop.dashboard.stats())
        return stats

    @tool
    def loop_heartbeat(ctx: Context, session_id: str, claim_token: str) -> Json:
        """Extend the lease of your claim (call it well before claim.expiresAt on long tasks)."""
        row: Json = call(ctx, lambda loop: loop.dispatch.heartbeat(session_id, claim_token))
        return row

    @tool
    def loop_release_task(ctx: Context, session_id: str, claim_token: str, reason: str | None = None,
                          failed: bool = False) -> Json:
        """Give a claimed issue back to the queue when you cannot finish it, saying why. Set failed=true
        when you tried and failed (not when the work is simply not for you): it counts as a strike, and
        an issue that fails repeatedly is parked for a human."""
        row: Json = call(ctx, lambda loop: loop.dispatch.release(session_id, claim_token, reason, failed=failed))
        return row

    @tool
    def loop_submit_review(ctx: Context, version_id: str, issue_id: str, clarity: int, completeness: int,
                           relevance: int, feedback: str | None = None) -> Json:
        """Rate the prompt you received (meta.versionId of the task), each score 1-5, with feedback on what
        was missing or unclear. Low scores make Loop open an issue to improve the template."""
        row: Json = call(ctx, lambda loop: loop.reviews.create(version_id, issue_id, clarity, completeness,
                                                               relevance, feedback=feedback,
                                                               author_type="agent"))
        return row

    @tool
    def loop_get_template_experiment(ctx: Context, template_id: str, history_limit: int = 5) -> Json:
        """Read a prompt template's experiment: active vs candidate version evidence (sessions, completion
        rate, median duration, reviews), the verdict of the decision rule, and its latest decisions."""
        def run(loop: LoopClient) -> Json:
            report: Json = loop.templates.experiment(template_id)
            history = loop.templates.history(template_id, max(1, min(history_limit, 50)))
            return {**report, "history": history.data, "historyTotal": history.total}

        out: Json = call(ctx, run)
        return out

    return server


# ---------------------------------------------------------------------- HTTP
class KeyCheck:
    """Validates Bearer keys against the Loop API, caching accepted keys briefly (by digest)."""

    def __init__(self, api_url: str, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.api_url = api_url
        self.ttl = ttl
        self.clock = clock
        self._ok: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self._lock:
            if self._ok.get(digest, 0) > now:
                return True
        try:
            LoopClient(self.api_url, token, max_retries=1, timeout=10).issues.list(limit=1)
        except AuthError:
            return False
        with self._lock:
            self._ok[digest] = now + self.ttl
        return True


def bearer_factory(api_url: str) -> ClientFactory:
    """Per request: a client that calls the API with the caller's own Bearer key."""

    def factory(ctx: Context | None) -> LoopClient:
        headers = ctx.headers if ctx is not None else None
        auth = (headers or {}).get("authorization") or ""
        if not auth.startswith("Bearer "):
            raise ToolError("Missing Bearer key")
        return LoopClient(api_url, auth[len("Bearer "):], max_retries=2)

    return factory


def http_app(api_url: str, host: str = "127.0.0.1", path: str = "/mcp",
             check: Callable[[str], bool] | None = None) -> Any:
    """The ASGI app: streamable HTTP at ``path`` behind Bearer auth, plus a public ``/health``."""
    import anyio.to_thread
    from starlette.responses import JSONResponse

    server = build_server(bearer_factory(api_url))
    inner = server.streamable_http_app(streamable_http_path=path, stateless_http=True, json_response=True,
                                       host=host)
    verify = check or KeyCheck(api_url)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)  # lifespan: starts the session manager
            return
        if scope.get("path") == "/health":
            await JSONResponse({"ok": True, "service": "loop-mcp"})(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        error = None
        if not auth.startswith("Bearer "):
            error = "Missing or malformed Authorization header"
        else:
            try:
                if not await anyio.to_thread.run_sync(verify, auth[len("Bearer "):]):
                    error = "Invalid API key"
            except LoopClientError as exc:
                await JSONResponse({"error": f"Loop API unreachable: {exc}"}, 503)(scope, receive, send)
                return
        if error:
            await JSONResponse({"error": error}, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await inner(scope, receive, send)

    return app


def run_http(api_url: str, host: str = "127.0.0.1", port: int = 5669) -> None:
    import uvicorn

    # Per-request noise off: uvicorn's access log, and httpx's and the MCP session manager's INFO line
    # for every call the tools make to the Loop API (the API logs each of those requests itself).
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uvicorn.run(http_app(api_url, host), host=host, port=port, log_level="info", access_log=False)


def run_stdio(client: LoopClient) -> None:
    build_server(client).run("stdio")
