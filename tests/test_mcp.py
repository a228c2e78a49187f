"""The MCP server's tools against a live Loop: in-process through the mcp package's Client,
over stdio (``loop mcp``) and over streamable HTTP (``loop mcp --http``, Bearer-authenticated)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from loop.mcp_server import build_server
from tests.live_server import BIN, LiveServer, live_server_fixture
from tests.redis_server import free_port

live = live_server_fixture()

TOOLS = {"loop_get_next_task", "loop_complete_task", "loop_create_issue", "loop_update_issue", "loop_list_issues",
         "loop_get_issue", "loop_ingest_signal", "loop_create_comment", "loop_get_dashboard", "loop_heartbeat",
         "loop_release_task", "loop_submit_review", "loop_record_goal_reading", "loop_list_goal_readings",
         "loop_get_template_experiment"}


def with_client(target: Any, fn: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Client(target) as client:
            return await fn(client)

    return anyio.run(main)


class Tools:
    """Calls tools on an in-process server; ``call`` returns the structured result or raises."""

    def __init__(self, live: LiveServer) -> None:
        self.server = build_server(live.client())

    def raw(self, name: str, **args: Any) -> Any:
        return with_client(self.server, lambda c: c.call_tool(name, args))

    def call(self, name: str, **args: Any) -> Any:
        result = self.raw(name, **args)
        assert not result.is_error, result.content[0].text
        return result.structured_content

    def error(self, name: str, **args: Any) -> str:
        """The error text, without the SDK's "Error executing tool <name>: " prefix."""
        result = self.raw(name, **args)
        assert result.is_error
        return str(result.content[0].text).removeprefix(f"Error executing tool {name}: ")


@pytest.fixture
def tools(live: LiveServer) -> Tools:
    return Tools(live)


def test_the_server_lists_the_nine_reference_tools_plus_claims_and_reviews(tools: Tools) -> None:
    listed = with_client(tools.server, lambda c: c.list_tools())
    assert {t.name for t in listed.tools} == TOOLS
    assert all(t.description for t in listed.tools)


def test_create_get_update_and_list_issues(tools: Tools, live: LiveServer) -> None:
    project = live.client().projects.create("mcp crud")
    issue = tools.call("loop_create_issue", title="From MCP", type="task", status="todo", priority=2,
                       project_id=project["id"], description="desc")
    assert issue["status"] == "todo" and issue["priority"] == 2
    got = tools.call("loop_get_issue", issue_id=issue["id"])
    assert got["title"] == "From MCP" and got["comments"] == [] and got["sessions"] == []
    updated = tools.call("loop_update_issue", issue_id=issue["id"], title="Renamed", status="backlog")
    assert (updated["title"], updated["status"]) == ("Renamed", "backlog")
    listed = tools.call("loop_list_issues", project_id=project["id"], status="backlog")
    assert listed["total"] == 1 and listed["data"][0]["id"] == issue["id"]


def test_errors_carry_the_server_message(tools: Tools) -> None:
    assert tools.error("loop_get_issue", issue_id="missing") == "Loop API 404: Issue not found"
    text = tools.error("loop_create_issue", title="x", type="nonsense")
    assert text.startswith("Loop API 400: ") and "type" in text
    assert tools.error("loop_create_issue", title="x", parent_id="nope") == "Loop API 422: Parent issue not found"
    assert tools.error("loop_update_issue", issue_id="x") == "Give at least one field to change."


def test_next_task_heartbeat_and_release(tools: Tools, live: LiveServer) -> None:
    project = live.client().projects.create("mcp claim")
    issue = tools.call("loop_create_issue", title="Claim via MCP", status="todo", project_id=project["id"])
    task = tools.call("loop_get_next_task", project_id=project["id"])
    assert task["issue"]["id"] == issue["id"]
    claim = task["claim"]
    assert tools.call("loop_get_next_task", project_id=project["id"])["issue"] is None
    beat = tools.call("loop_heartbeat", session_id=claim["sessionId"], claim_token=claim["token"])
    assert beat["status"] == "active"
    released = tools.call("loop_release_task", session_id=claim["sessionId"], claim_token=claim["token"],
                          reason="need a human")
    assert released["status"] == "released" and released["reason"] == "need a human"
    assert live.client().issues.get(issue["id"])["status"] == "todo"
    assert "Loop API 409" in tools.error("loop_heartbeat", session_id=claim["sessionId"],
                                         claim_token=claim["token"])


def test_release_task_with_failed_counts_as_a_failed_session(tools: Tools, live: LiveServer) -> None:
    project = live.client().projects.create("mcp failed release")
    issue = tools.call("loop_create_issue", title="Fails via MCP", status="todo", project_id=project["id"])
    claim = tools.call("loop_get_next_task", project_id=project["id"])["claim"]
    failed = tools.call("loop_release_task", session_id=claim["sessionId"], claim_token=claim["token"],
                        reason="tests fail", failed=True)
    assert failed["status"] == "failed" and failed["reason"] == "tests fail"
    assert live.client().issues.get(issue["id"])["status"] == "todo"


def test_complete_task_reports_exactly_the_issues_it_unblocked(tools: Tools, live: LiveServer) -> None:
    loop = live.client()
    p, q = loop.projects.create("mcp unblock p")["id"], loop.projects.create("mcp unblock q")["id"]
    a = loop.issues.create("A blocker", "task", status="todo", priority=1, project_id=p)
    b = loop.issues.create("B blocked_by A", "task", status="todo", priority=4, project_id=p)
    c = loop.issues.create("C blocked by A (A blocks C)", "task", status="todo", project_id=q)
    d = loop.issues.create("D unrelated", "task", status="todo", priority=4, project_id=p)
    e = loop.issues.create("E in backlog blocked_by A", "task", status="backlog", project_id=p)
    f = loop.issues.create("F blocked_by A and G", "task", status="todo", project_id=q)
    g = loop.issues.create("G another blocker", "task", status="backlog", project_id=q)
    loop.relations.create(b["id"], "blocked_by", a["id"])
    loop.relations.create(a["id"], "blocks", c["id"])
    loop.relations.create(e["id"], "blocked_by", a["id"])
    loop.relations.create(f["id"], "blocked_by", a["id"])
    loop.relations.create(g["id"], "blocks", f["id"])
    task = tools.call("loop_get_next_task", project_id=p)
    assert task["issue"]["id"] == a["id"]
    result = tools.call("loop_complete_task", issue_id=a["id"], summary="Done by MCP",
                        claim_token=task["claim"]["token"], commits=[{"sha": "abc123", "message": "fix"}])
    assert result["issue"]["status"] == "done" and result["issue"]["agentSummary"] == "Done by MCP"
    assert result["issue"]["commits"][0]["sha"] == "abc123"
    assert sorted(i["id"] for i in result["unblocked"]) == sorted([b["id"], c["id"]])
    assert d["id"] not in [i["id"] for i in result["unblocked"]]


def test_comment_signal_and_dashboard(tools: Tools, live: LiveServer) -> None:
    issue = live.client().issues.create("mcp comment", "task")
    comment = tools.call("loop_create_comment", issue_id=issue["id"], body="Progress note", author_name="claude")
    assert (comment["authorType"], comment["authorName"]) == ("agent", "claude")
    ingested = tools.call("loop_ingest_signal", source="mcp-test", type="error", severity="high",
                          payload={"message": "Checkout fails"})
    assert ingested["signal"]["source"] == "mcp-test" and "Checkout fails" in ingested["issue"]["title"]
    stats = tools.call("loop_get_dashboard")
    assert set(stats) >= {"issues", "goals", "dispatch"}


def test_signals_with_one_fingerprint_group_into_one_issue(tools: Tools) -> None:
    args = {"source": "mcp-test", "type": "error", "severity": "low", "fingerprint": "mcp-fp-1"}
    first = tools.call("loop_ingest_signal", payload={"message": "Flaky"}, **args)
    second = tools.call("loop_ingest_signal", payload={"message": "Flaky again"}, **args)
    assert (first["grouped"], second["grouped"]) == (False, True)
    assert second["issue"]["id"] == first["issue"]["id"] and second["issue"]["signalCount"] == 2
    assert second["signal"]["fingerprint"] == "mcp-fp-1"
    assert "fingerprint" in tools.error("loop_ingest_signal", payload={}, **{**args, "fingerprint": "x" * 201})


def test_goal_readings_are_recorded_and_listed_newest_first(tools: Tools, live: LiveServer) -> None:
    goal = live.client().goals.create("MCP coverage", metric="coverage", target_value=90)
    tools.call("loop_record_goal_reading", goal_id=goal["id"], value=80, at="2025-01-01T00:00:00Z", source="ci")
    after = tools.call("loop_record_goal_reading", goal_id=goal["id"], value=91, at="2025-01-02T00:00:00Z")
    assert (after["currentValue"], after["status"]) == (91, "achieved")
    listed = tools.call("loop_list_goal_readings", goal_id=goal["id"], limit=1)
    assert listed["total"] == 2 and [r["value"] for r in listed["data"]] == [91]
    assert tools.call("loop_list_goal_readings", goal_id=goal["id"], offset=1)["data"][0]["source"] == "ci"
    assert tools.error("loop_record_goal_reading", goal_id="missing", value=1) == "Loop API 404: Goal not found"


def test_submit_review_rates_the_prompt_version(tools: Tools, live: LiveServer) -> None:
    project = live.client().projects.create("mcp review")
    issue = tools.call("loop_create_issue", title="Review me", status="todo", project_id=project["id"])
    task = tools.call("loop_get_next_task", project_id=project["id"])
    assert task["meta"] and task["meta"]["versionId"]
    review = tools.call("loop_submit_review", version_id=task["meta"]["versionId"], issue_id=issue["id"],
                        clarity=4, completeness=3, relevance=5, feedback="Missing the repo layout")
    assert review["authorType"] == "agent" and review["clarity"] == 4
    assert "Loop API 404" in tools.error("loop_submit_review", version_id="nope", issue_id=issue["id"],
                                         clarity=1, completeness=1, relevance=1)


def test_an_agent_reads_a_template_experiment_side_by_side_with_its_history(tools: Tools, live: LiveServer
                                                                            ) -> None:
    sdk = live.client()
    tid = "tpl_default_task_execution"
    draft = sdk.templates.create_version(tid, "Candidate for {{issue.title}}", changelog="shorter")
    sdk.templates.set_candidate(tid, draft["id"], 10)
    read = tools.call("loop_get_template_experiment", template_id=tid)
    assert read["active"]["versionId"] == "ver_default_task_execution_v1"
    assert read["candidate"]["versionId"] == draft["id"] and read["candidateShare"] == 10
    assert read["verdict"]["outcome"] == "not_enough_data"
    assert [e["action"] for e in read["history"]] == ["candidate_set"] and read["historyTotal"] == 1
    assert "Loop API 404" in tools.error("loop_get_template_experiment", template_id="tpl_missing")
    sdk.templates.clear_candidate(tid)


# ---------------------------------------------------------------- transports
def test_the_stdio_server_serves_the_tools(live: LiveServer) -> None:
    params = StdioServerParameters(command=str(BIN / "loop"), args=["mcp"], env=dict(live.env))
    issue = live.client().issues.create("over stdio", "task")

    async def run(client: Client) -> Any:
        listed = await client.list_tools()
        got = await client.call_tool("loop_get_issue", {"issue_id": issue["id"]})
        missing = await client.call_tool("loop_get_issue", {"issue_id": "missing"})
        return listed, got, missing

    listed, got, missing = with_client(params, run)
    assert {t.name for t in listed.tools} == TOOLS
    assert got.structured_content["title"] == "over stdio"
    assert missing.is_error and missing.content[0].text.endswith(": Loop API 404: Issue not found")


@pytest.fixture(scope="module")
def mcp_http(live: LiveServer) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "loop"), "mcp", "--http", "--port", str(port)], env=live.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"loop mcp --http did not start: {proc.stderr.read() if proc.stderr else b''!r}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _post(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json",
                                             "Accept": "application/json, text/event-stream", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_http_mcp_rejects_requests_without_a_valid_bearer_key(mcp_http: str) -> None:
    assert _post(mcp_http + "/mcp", {}) == (401, {"error": "Missing or malformed Authorization header"})
    assert _post(mcp_http + "/mcp", {"Authorization": "Bearer wrong"}) == (401, {"error": "Invalid API key"})


def test_http_mcp_calls_the_api_with_the_callers_own_key(mcp_http: str, live: LiveServer) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    named = live.client().keys.create("mcp-http-agent")
    issue = live.client().issues.create("over http", "task")

    async def main() -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {named['key']}"}) as http, \
                Client(streamable_http_client(mcp_http + "/mcp", http_client=http)) as client:
            listed = await client.list_tools()
            comment = await client.call_tool("loop_create_comment", {"issue_id": issue["id"], "body": "via http"})
            return listed, comment

    listed, comment = anyio.run(main)
    assert {t.name for t in listed.tools} == TOOLS
    assert not comment.is_error, comment.content
    (stored,) = live.client().issues.comments(issue["id"])
    assert stored["body"] == "via http" and stored.get("keyName") == "mcp-http-agent"
