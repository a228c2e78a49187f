"""notBefore and outcome through the CLI (relative times), the SDK and the MCP tools (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loop.cli.common import CliError, when
from loop.clock import iso, parse_iso
from tests.live_server import Cli, LiveServer, live_server_fixture, make_cli
from tests.test_mcp import Tools

live = live_server_fixture()
NOW = 1_771_588_800_000


@pytest.mark.parametrize("text, delta_ms", [("48h", 48 * 3_600_000), ("+90m", 90 * 60_000), ("2d", 2 * 86_400_000),
                                             ("1.5h", 5_400_000), ("now", 0), ("30s", 30_000)])
def test_relative_not_before_times_are_resolved_against_now(text, delta_ms):
    assert when(text, NOW) == iso(NOW + delta_ms)


def test_an_iso_not_before_is_kept_and_anything_else_is_refused_naming_the_option():
    assert when("2026-03-01T12:00:00Z", NOW) == "2026-03-01T12:00:00.000Z"
    with pytest.raises(CliError, match="--not-before"):
        when("soonish", NOW)


@pytest.fixture
def cli(live: LiveServer, tmp_path: Path) -> Cli:
    return make_cli(live, tmp_path / "cfg")


def test_the_cli_creates_a_monitor_48h_ahead_lists_it_as_scheduled_and_records_its_outcome(cli: Cli) -> None:
    row = cli.json("issues", "create", "Check conversion", "--type", "monitor", "--status", "todo",
                   "--not-before", "48h")
    assert parse_iso(row["notBefore"]) - parse_iso(row["createdAt"]) == pytest.approx(48 * 3_600_000, abs=60_000)
    listed = cli.json("dispatch", "scheduled")
    assert row["id"] in [i["id"] for i in listed["data"]]
    assert cli("dispatch", "scheduled").stdout.count("Check conversion") == 1
    cli("issues", "update", row["id"], "--no-not-before")
    assert row["id"] not in [i["id"] for i in cli.json("dispatch", "scheduled")["data"]]
    done = cli.json("issues", "done", row["id"], "--outcome", "validated", "-m", "recovered")
    assert (done["status"], done["outcome"]) == ("done", "validated")


def test_the_sdk_pages_scheduled_issues_and_mcp_tools_take_not_before_and_an_outcome(live: LiveServer) -> None:
    loop, tools = live.client(), Tools(live)
    created = tools.call("loop_create_issue", title="Re-check", type="monitor", status="todo",
                         not_before="2099-01-01T00:00:00Z")
    assert created["notBefore"] == "2099-01-01T00:00:00.000Z"
    assert created["id"] in [i["id"] for i in loop.dispatch.iter_scheduled()]
    tools.call("loop_update_issue", issue_id=created["id"], not_before="2000-01-01T00:00:00Z")
    out = tools.call("loop_complete_task", issue_id=created["id"], summary="held", outcome="inconclusive")
    assert out["issue"]["outcome"] == "inconclusive"
    assert "outcome" in tools.error("loop_update_issue", issue_id=loop.issues.create("t", "task")["id"],
                                    outcome="validated")


def test_loop_demo_runs_the_whole_cycle_against_a_live_loop_and_prints_each_step(cli: Cli, live: LiveServer) -> None:
    out = cli("demo", "--check-after", "1").stdout
    for step in ("1. observe", "2. hypothesize", "3. plan", "4. verify", "waits for", "outcome invalidated",
                 "5. the outcome comes back", "outcome validated", "6. validated", "Demo finished"):
        assert step in out, (step, out)
    loop = live.client()
    project = out.rsplit("Demo finished in project ", 1)[1].split()[0]
    assert loop.signals.list(source="loop", project_id=project).total == 1
