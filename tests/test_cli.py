"""The ``loop`` CLI against a live Loop: auth, config, issues, comments, relations, projects,
goals, labels, keys, status and completions, with their error paths."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.live_server import Cli, LiveServer, live_server_fixture, make_cli
from tests.redis_server import free_port

live = live_server_fixture()


@pytest.fixture
def cli(live: LiveServer, tmp_path: Path) -> Cli:
    return make_cli(live, tmp_path / "cfg")


# ---------------------------------------------------------------- auth/config
def test_login_checks_the_key_and_saves_it_in_a_0600_config_file(cli: Cli, live: LiveServer) -> None:
    cli("auth", "login", "--url", live.url, "--key", live.api_key, LOOP_API_KEY=None, LOOP_API_URL=None)
    path = cli.config_dir / "config.json"
    assert json.loads(path.read_text()) == {"url": live.url, "api_key": live.api_key}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    status = cli("auth", "status", "--plain", LOOP_API_KEY=None, LOOP_API_URL=None).stdout
    assert "Authenticated\tyes" in status and f"Server\t{live.url}" in status


def test_login_prompts_for_the_key_when_it_is_not_given(cli: Cli, live: LiveServer) -> None:
    cli("auth", "login", "--url", live.url, input=live.api_key + "\n", LOOP_API_KEY=None)
    assert json.loads((cli.config_dir / "config.json").read_text())["api_key"] == live.api_key


def test_login_with_a_wrong_key_fails_and_saves_nothing(cli: Cli, live: LiveServer) -> None:
    err = cli.error("auth", "login", "--url", live.url, "--key", "wrong")
    assert err.startswith("error: login failed: Invalid API key")
    assert not (cli.config_dir / "config.json").exists()


def test_logout_forgets_the_key_and_status_then_fails(cli: Cli, live: LiveServer) -> None:
    cli("auth", "login", "--url", live.url, "--key", live.api_key)
    cli("auth", "logout")
    assert "api_key" not in json.loads((cli.config_dir / "config.json").read_text())
    result = cli("auth", "status", "--json", code=1, LOOP_API_KEY=None)
    assert json.loads(result.stdout)["authenticated"] is False


def test_config_set_get_list_and_unset(cli: Cli) -> None:
    cli("config", "set", "project", "p-123")
    cli("config", "set", "token", "loop_secret_value_123456")
    assert cli("config", "get", "project").stdout.strip() == "p-123"
    listed = cli.json("config", "list")
    rows = {r["key"]: r for r in listed["data"]}
    assert rows["project"]["value"] == "p-123"
    assert rows["api_key"]["value"] != "loop_secret_value_123456"  # masked; the env key wins anyway
    assert stat.S_IMODE((cli.config_dir / "config.json").stat().st_mode) == 0o600
    cli("config", "unset", "project")
    assert cli.error("config", "get", "project") == "error: project is not set"


def test_the_environment_wins_over_the_config_file(cli: Cli) -> None:
    cli("config", "set", "url", "http://127.0.0.1:1")
    got = cli.json("config", "get", "url")
    assert got["value"] == cli.live.url and got["source"] == "env LOOP_API_URL"


def test_config_rejects_unknown_keys_and_bad_values(cli: Cli) -> None:
    assert "unknown config key 'colour'" in cli.error("config", "set", "colour", "red")
    assert "output must be one of" in cli.error("config", "set", "output", "yaml")
    assert "url must start with" in cli.error("config", "set", "url", "localhost")


def test_configured_output_mode_is_the_default(cli: Cli) -> None:
    cli("config", "set", "output", "json")
    assert isinstance(json.loads(cli("labels", "list").stdout)["data"], list)


def test_a_corrupt_config_file_is_a_readable_error(cli: Cli) -> None:
    cli.config_dir.mkdir(parents=True)
    (cli.config_dir / "config.json").write_text("{nope")
    assert "cannot read" in cli.error("config", "list")


def test_an_unreachable_server_is_one_readable_line(cli: Cli) -> None:
    err = cli.error("issues", "list", LOOP_API_URL=f"http://127.0.0.1:{free_port()}")
    assert err.startswith("error: Cannot reach Loop at") and "is the server running?" in err


def test_a_wrong_key_is_one_readable_line(cli: Cli) -> None:
    assert cli.error("issues", "list", LOOP_API_KEY="nope").startswith("error: Invalid API key")


def test_json_and_plain_together_is_a_usage_error(cli: Cli) -> None:
    assert "mutually exclusive" in cli("issues", "list", "--json", "--plain", code=2).stderr


# --------------------------------------------------------------------- issues
def test_issue_create_list_view_start_done(cli: Cli) -> None:
    project = cli.json("projects", "create", "CLI issues")
    created = cli.json("issues", "create", "Fix login", "--type", "task", "--status", "todo", "--priority", "2",
                       "-d", "The login form 500s", "--project", project["id"])
    assert created["status"] == "todo" and created["priority"] == 2
    plain = cli("issues", "list", "--project", project["id"], "--plain").stdout.strip().splitlines()
    assert plain == [f"{created['number']}\ttodo\ttask\t2 high\tFix login\t{created['id']}"]
    table = cli("issues", "list", "--project", project["id"]).stdout
    assert "Fix login" in table and "Status" in table
    view = cli.json("issues", "view", f"#{created['number']}")
    assert view["id"] == created["id"] and view["comments"] == []
    assert "The login form 500s" in cli("issues", "view", created["id"]).stdout
    assert cli.json("issues", "start", created["id"])["status"] == "in_progress"
    done = cli.json("issues", "done", str(created["number"]), "-m", "Fixed the null check")
    assert done["status"] == "done" and done["agentSummary"] == "Fixed the null check"


def test_issue_create_attaches_labels_by_name_and_a_parent_by_number(cli: Cli) -> None:
    cli("labels", "create", "cli-frontend", "--color", "#00f")
    parent = cli.json("issues", "create", "Parent plan", "--type", "plan")
    child = cli.json("issues", "create", "Child", "--parent", f"#{parent['number']}", "-l", "cli-frontend")
    detail = cli.json("issues", "view", child["id"])
    assert detail["parent"]["id"] == parent["id"]
    assert [lb["name"] for lb in detail["labels"]] == ["cli-frontend"]
    assert "no label named 'nope'" in cli.error("issues", "create", "X", "-l", "nope")


def test_issue_update_changes_only_what_is_given_and_can_clear(cli: Cli) -> None:
    project = cli.json("projects", "create", "CLI update")
    issue = cli.json("issues", "create", "Before", "--project", project["id"])
    row = cli.json("issues", "update", issue["id"], "--title", "After", "--status", "todo", "--priority", "1")
    assert (row["title"], row["status"], row["priority"], row["projectId"]) == ("After", "todo", 1, project["id"])
    assert cli.json("issues", "update", issue["id"], "--no-project")["projectId"] is None
    assert "nothing to update" in cli.error("issues", "update", issue["id"])


def test_issue_label_and_unlabel(cli: Cli) -> None:
    cli("labels", "create", "cli-tag")
    issue = cli.json("issues", "create", "Tag me")
    cli("issues", "label", issue["id"], "cli-tag")
    assert [lb["name"] for lb in cli.json("issues", "view", issue["id"])["labels"]] == ["cli-tag"]
    cli("issues", "unlabel", issue["id"], "cli-tag")
    assert cli.json("issues", "view", issue["id"])["labels"] == []


def test_issue_delete_asks_for_confirmation(cli: Cli) -> None:
    issue = cli.json("issues", "create", "Doomed")
    cli("issues", "delete", issue["id"], input="n\n", code=1)
    assert cli.json("issues", "view", issue["id"])["id"] == issue["id"]
    cli("issues", "delete", issue["id"], input="y\n")
    assert cli.error("issues", "view", issue["id"]) == "error: Issue not found"


def test_issue_errors_are_one_line_with_the_server_message(cli: Cli) -> None:
    assert cli.error("issues", "view", "missing-id") == "error: Issue not found"
    assert cli.error("issues", "view", "#999999") == "error: no issue #999999"
    assert cli.error("issues", "create", "x", "--parent", "nope") == "error: Parent issue not found"
    assert "Invalid value for '--type'" in cli("issues", "create", "x", "--type", "bogus", code=2).stderr
    assert cli.error("issues", "create", "x" * 501).startswith("error: ")


def test_issue_list_all_pages_through_everything(cli: Cli) -> None:
    project = cli.json("projects", "create", "CLI paging")
    for i in range(3):
        cli("issues", "create", f"p{i}", "--project", project["id"])
    one = cli.json("issues", "list", "--project", project["id"], "--limit", "1")
    assert len(one["data"]) == 1 and one["total"] == 3
    assert [r["title"] for r in cli.json("issues", "list", "--project", project["id"], "--all")["data"]] == [
        "p0", "p1", "p2"]
    assert "1 of 3 shown" in cli("issues", "list", "--project", project["id"], "--limit", "1").stdout


# ------------------------------------------------------- comments/relations
def test_comments_add_reply_and_list(cli: Cli) -> None:
    issue = cli.json("issues", "create", "Discuss")
    top = cli.json("comments", "add", issue["id"], "First thoughts", "--author", "ana")
    assert top["authorName"] == "ana" and top["authorType"] == "human"
    cli("comments", "add", issue["id"], "-", "--agent", "--author", "bot", "--reply-to", top["id"],
        input="from stdin\n")
    thread = cli.json("comments", "list", issue["id"])["data"]
    assert thread[0]["replies"][0]["body"] == "from stdin" and thread[0]["replies"][0]["authorType"] == "agent"
    assert "↳ bot" in cli("comments", "list", issue["id"], "--plain").stdout
    assert cli.error("comments", "add", "nope", "x") == "error: Issue not found"


def test_relations_add_and_delete(cli: Cli) -> None:
    a = cli.json("issues", "create", "A")
    b = cli.json("issues", "create", "B")
    rel = cli.json("relations", "add", f"#{a['number']}", "blocks", b["id"])
    assert (rel["issueId"], rel["type"], rel["relatedIssueId"]) == (a["id"], "blocks", b["id"])
    shown = cli("issues", "view", b["id"]).stdout  # the blocked side sees who holds the relation
    assert "Incoming relations" in shown and a["id"] in shown and rel["id"] in shown
    assert "Incoming relations" not in cli("issues", "view", a["id"]).stdout
    assert cli.error("relations", "add", a["id"], "related", a["id"]) == (
        "error: Cannot create a relation to the same issue")
    cli("relations", "delete", rel["id"])
    assert cli.error("relations", "delete", rel["id"]) == "error: Relation not found"


# ------------------------------------------------------ projects/goals/labels
def test_projects_crud(cli: Cli) -> None:
    goal = cli.json("goals", "create", "G", "--target", "10", "--current", "1", "--unit", "%")
    p = cli.json("projects", "create", "Proj", "-d", "desc", "--status", "active", "--goal", goal["id"])
    assert p["goalId"] == goal["id"] and p["status"] == "active"
    assert p["id"] in cli("projects", "list", "--plain").stdout
    view = cli.json("projects", "view", p["id"])
    assert view["goal"]["id"] == goal["id"]
    assert "1%" in cli("goals", "list").stdout or "1.0%" in cli("goals", "list").stdout
    assert cli.json("projects", "update", p["id"], "--health", "off_track")["health"] == "off_track"
    assert cli.json("projects", "update", p["id"], "--no-goal")["goalId"] is None
    cli("projects", "delete", p["id"], "--yes")
    assert cli.error("projects", "view", p["id"]) == "error: Project not found"
    assert cli.error("projects", "create", "x", "--goal", "nope") == "error: Goal not found"


def test_goals_crud(cli: Cli) -> None:
    g = cli.json("goals", "create", "Ship", "--metric", "features", "--target", "5")
    assert cli.json("goals", "update", g["id"], "--current", "3")["currentValue"] == 3
    assert cli.json("goals", "view", g["id"])["metric"] == "features"
    assert g["id"] in [r["id"] for r in cli.json("goals", "list", "--all")["data"]]
    cli("goals", "delete", g["id"], "-y")
    assert cli.error("goals", "view", g["id"]) == "error: Goal not found"
    assert "nothing to update" in cli.error("goals", "update", g["id"])


def test_goals_record_readings_and_list_them_newest_first(cli: Cli) -> None:
    g = cli.json("goals", "create", "Coverage", "--metric", "coverage", "--target", "90")
    cli("goals", "record", g["id"], "85", "--at", "2025-01-01T00:00:00Z", "--source", "ci")
    out = cli("goals", "record", g["id"], "92", "--at", "2025-01-02T00:00:00Z", "--plain").stdout
    assert "Recorded 92 on goal Coverage" in out and "achieved" in out
    rows = cli("goals", "readings", g["id"], "--plain").stdout.strip().splitlines()
    assert [r.split("\t")[1] for r in rows] == ["92", "85"] and rows[1].endswith("\tci")
    page = cli.json("goals", "readings", g["id"], "--limit", "1", "--offset", "1")
    assert page["total"] == 2 and [r["value"] for r in page["data"]] == [85]
    assert len(cli.json("goals", "readings", g["id"], "--all")["data"]) == 2
    negative = json.loads(cli("goals", "record", "--json", g["id"], "--", "-1").stdout)  # now: the latest
    assert (negative["currentValue"], negative["status"]) == (-1, "active")
    assert "at" in cli.error("goals", "record", g["id"], "1", "--at", "soon")
    assert cli.error("goals", "readings", "missing") == "error: Goal not found"


def test_labels_create_list_delete_and_duplicate(cli: Cli) -> None:
    lb = cli.json("labels", "create", "cli-dup", "--color", "#123456")
    assert cli.error("labels", "create", "cli-dup") == "error: Label name already exists"
    assert "cli-dup\t#123456" in cli("labels", "list", "--plain", "--all").stdout
    cli("labels", "delete", "cli-dup", "-y")
    assert lb["id"] not in cli("labels", "list", "--plain", "--all").stdout


# --------------------------------------------------------- keys/status/misc
def test_keys_create_list_and_revoke(cli: Cli) -> None:
    secret = cli("keys", "create", "cli-agent", "--plain").stdout.strip()
    assert secret and "\n" not in secret
    assert "cli-agent" in cli("keys", "list").stdout
    assert cli.json("issues", "list", LOOP_API_KEY=secret)["total"] >= 0
    assert "bootstrap key" in cli.error("keys", "list", LOOP_API_KEY=secret)
    cli("keys", "revoke", "cli-agent")
    assert cli.error("issues", "list", LOOP_API_KEY=secret).startswith("error: Invalid API key")
    assert cli.error("keys", "revoke", "cli-agent") == "error: API key not found"


def test_status_reports_an_unreachable_server_and_exits_non_zero(cli: Cli) -> None:
    result = cli("status", "--json", code=1, LOOP_API_URL=f"http://127.0.0.1:{free_port()}")
    assert json.loads(result.stdout)["server"].startswith("down: Cannot reach Loop")


def test_completions_print_a_script_for_each_shell(cli: Cli) -> None:
    assert "_LOOP_COMPLETE" in cli("completions", "bash").stdout
    assert "compdef" in cli("completions", "zsh").stdout
    assert "complete" in cli("completions", "fish").stdout


def test_status_reports_the_server_the_key_and_the_counts(cli: Cli) -> None:
    cli("issues", "create", "Status triage", "--status", "triage")
    info = cli.json("status")
    assert info["server"].startswith("up") and info["authenticated"] is True
    assert info["issues"] >= 1 and info["triage"] >= 1


def test_status_with_a_wrong_key_exits_non_zero(cli: Cli) -> None:
    info = json.loads(cli("status", "--json", code=1, LOOP_API_KEY="bad").stdout)
    assert info["authenticated"] is False and "Invalid API key" in info["error"]


def test_issue_create_reads_the_description_from_a_file_and_takes_a_hypothesis(cli: Cli, tmp_path: Path) -> None:
    desc = tmp_path / "desc.md"
    desc.write_text("# Context\nFrom a file")
    hypo = '{"statement": "Caching halves latency", "confidence": 0.7, "evidence": ["p95"], "validationCriteria": "p95 < 100ms"}'
    row = cli.json("issues", "create", "Cache it", "-t", "hypothesis", "--description-file", str(desc),
                   "--hypothesis", hypo)
    assert row["description"] == "# Context\nFrom a file" and row["hypothesis"]["confidence"] == 0.7
    assert "comments" not in cli.json("issues", "view", row["id"], "--no-comments")
    assert "--hypothesis is not valid JSON" in cli.error("issues", "create", "x", "--hypothesis", "{")
