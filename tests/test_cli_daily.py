"""Daily-use CLI fixes: issue numbers wherever an issue is taken, `loop dispatch next`, stdin
comments, and `loop work --once` saying what happened."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.live_server import BIN, ROOT, Cli, LiveServer, live_server_fixture, make_cli

live = live_server_fixture()


@pytest.fixture
def cli(live: LiveServer, tmp_path: Path) -> Cli:
    return make_cli(live, tmp_path / "cfg")


def test_issues_list_takes_the_parent_as_a_number_with_or_without_a_hash(cli: Cli) -> None:
    parent = cli.json("issues", "create", "Parent of two")
    kids = [cli.json("issues", "create", f"Kid {i}", "--parent", parent["id"])["id"] for i in range(2)]
    for ref in (str(parent["number"]), f"#{parent['number']}", parent["id"]):
        listed = cli.json("issues", "list", "--parent", ref)
        assert sorted(r["id"] for r in listed["data"]) == sorted(kids), ref


def test_an_unknown_issue_number_is_a_one_line_error_not_an_empty_list(cli: Cli) -> None:
    assert cli.error("issues", "list", "--parent", "#999999") == "error: no issue #999999"
    assert cli.error("issues", "view", "999999") == "error: no issue #999999"


def test_an_issue_number_is_resolved_with_one_request_whatever_the_backlog(cli: Cli, live: LiveServer,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from loop.cli.issues import resolve_issue
    from loop.client import LoopClient

    first = cli.json("issues", "create", "Old one")
    for i in range(3):
        cli.json("issues", "create", f"Filler {i}")
    loop = LoopClient(live.url, live.api_key)
    calls: list[str] = []
    send = loop.transport.request
    monkeypatch.setattr(loop.transport, "request", lambda method, path, **kw: calls.append(path) or send(
        method, path, **kw))
    assert resolve_issue(loop, f"#{first['number']}") == first["id"]
    assert calls == [f"/api/issues/{first['number']}"]


def test_dispatch_next_is_an_alias_of_next(cli: Cli) -> None:
    assert cli.json("dispatch", "next", "-p", "no-such-project") is None
    issue = cli.json("issues", "create", "Claim me via dispatch next", "--status", "todo", "--priority", "1")
    project_free = cli.json("dispatch", "next")
    assert project_free is not None and project_free["issue"]["id"] == issue["id"]


def test_a_comment_read_from_stdin_loses_the_final_newline_only(cli: Cli) -> None:
    issue = cli.json("issues", "create", "Commented")
    row = cli.json("comments", "add", str(issue["number"]), "-", input="line one\n\nline two\n")
    assert row["body"] == "line one\n\nline two"


def _work(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "loop"), "work", "--command", "true", "--once", *args], env=live.env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_work_once_on_an_empty_queue_says_there_is_nothing_to_do(live: LiveServer) -> None:
    project = live.client().projects.create("daily empty")["id"]
    result = _work(live, "--project", project)
    assert result.returncode == 0
    assert f"nothing to do: no eligible issue in the queue of project {project}" in result.stderr


def test_work_on_a_project_that_does_not_exist_fails_naming_it(live: LiveServer) -> None:
    result = _work(live, "--project", "no-such-project")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no project 'no-such-project' (see `loop projects list`)"
