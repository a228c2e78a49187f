"""The ``loop`` CLI against a live Loop: signals, triage, templates, reviews, next, dispatch,
sessions and dashboard, with their error paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import Cli, LiveServer, live_server_fixture, make_cli

live = live_server_fixture()


@pytest.fixture
def cli(live: LiveServer, tmp_path: Path) -> Cli:
    return make_cli(live, tmp_path / "cfg")


def project(cli: Cli, name: str) -> str:
    return str(cli.json("projects", "create", name)["id"])


# -------------------------------------------------------------- signals/triage
def test_signals_ingest_list_and_view(cli: Cli) -> None:
    pid = project(cli, "cli signals")
    made = cli.json("signals", "ingest", "--source", "cli-ci", "--type", "build_failed", "--severity", "high",
                    "-m", "main is red", "--payload", '{"run": 42}', "--project", pid)
    assert made["issue"]["title"] == "[cli-ci] build_failed: main is red"
    assert made["signal"]["payload"] == {"run": 42, "message": "main is red"}
    listed = cli("signals", "list", "--project", pid, "--plain").stdout.strip().splitlines()
    assert len(listed) == 1 and listed[0].startswith("cli-ci\tbuild_failed\thigh\t")
    assert cli.json("signals", "view", made["signal"]["id"])["payload"] == {"run": 42, "message": "main is red"}
    assert "build_failed" in cli("signals", "view", made["signal"]["id"]).stdout
    assert "Signal" in cli("signals", "ingest", "--source", "x", "--type", "y").stdout


def test_signals_ingest_with_a_fingerprint_groups_and_the_list_shows_the_group_count(cli: Cli) -> None:
    pid = project(cli, "cli grouping")
    args = ("signals", "ingest", "--source", "ci", "--type", "build_failed", "--project", pid,
            "--fingerprint", "repo/ci/main")
    first = cli.json(*args, "-m", "main is red")
    assert first["grouped"] is False
    out = cli(*args, "-m", "still red", "--plain").stdout
    assert f"issue #{first['issue']['number']}" in out and "grouped: 2 signals" in out
    rows = cli("signals", "list", "--project", pid, "--plain").stdout.strip().splitlines()
    assert len(rows) == 2 and all(r.split("\t")[3:5] == [first["issue"]["id"], "2"] for r in rows)
    assert "fingerprint" in cli.error(*args[:-1], "x" * 201)


def test_signals_ingest_reads_a_payload_file_and_rejects_bad_json(cli: Cli, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"title": "From a file"}')
    made = cli.json("signals", "ingest", "--source", "f", "--type", "t", "--payload-file", str(payload))
    assert made["issue"]["title"] == "[f] t: From a file"
    assert "--payload is not valid JSON" in cli.error("signals", "ingest", "--source", "f", "--type", "t",
                                                      "--payload", "{nope")
    assert "must be a JSON object" in cli.error("signals", "ingest", "--source", "f", "--type", "t",
                                                "--payload", "[1]")
    assert cli.error("signals", "view", "missing").startswith("error: ")


def test_triage_lists_accepts_and_declines(cli: Cli, live: LiveServer) -> None:
    pid = project(cli, "cli triage")
    a = cli.json("issues", "create", "Triage A", "--status", "triage", "--project", pid)
    b = cli.json("issues", "create", "Triage B", "--status", "triage", "--project", pid)
    listed = cli.json("triage", "--project", pid)
    assert [r["id"] for r in listed["data"]] == [a["id"], b["id"]]
    accepted = cli.json("triage", "accept", a["id"], "--priority", "2")
    assert (accepted["status"], accepted["priority"]) == ("todo", 2)
    assert cli.json("triage", "accept", f"#{b['number']}", "--to", "backlog")["status"] == "backlog"
    c = cli.json("issues", "create", "Triage C", "--status", "triage", "--project", pid)
    assert cli.json("triage", "decline", c["id"], "-r", "duplicate of A", "--author", "ana")["status"] == "canceled"
    (comment,) = live.client().issues.comments(c["id"])
    assert comment["body"] == "Declined in triage: duplicate of A" and comment["authorName"] == "ana"
    assert "Triage is empty." in cli("triage", "--project", pid).stdout
    assert cli.error("triage", "accept", "missing") == "error: Issue not found"


# ------------------------------------------------------------ templates/reviews
def test_templates_create_from_a_file_version_promote_show_and_preview(cli: Cli, tmp_path: Path) -> None:
    v1 = tmp_path / "v1.hbs"
    v1.write_text("Do {{issue.title}}.")
    made = cli.json("templates", "create", "cli-docs", "CLI docs", "--conditions", '{"labels": ["cli-docs"]}',
                    "--specificity", "80", "--file", str(v1), "--changelog", "first")
    assert made["version"]["status"] == "active" and made["template"]["slug"] == "cli-docs"
    assert "cli-docs" in cli("templates", "list", "--limit", "200", "--plain").stdout
    v2 = tmp_path / "v2.hbs"
    v2.write_text("Please document {{issue.title}}.")
    draft = cli.json("templates", "version", "cli-docs", "-f", str(v2), "-m", "politer")
    assert (draft["version"], draft["status"]) == (2, "draft")
    assert [v["version"] for v in cli.json("templates", "versions", "cli-docs")["data"]] == [2, 1]
    assert cli.json("templates", "promote", "cli-docs", "v2")["status"] == "active"
    shown = cli("templates", "show", "cli-docs").stdout
    assert "Please document {{issue.title}}." in shown and "politer" in shown
    assert cli.json("templates", "show", made["template"]["id"])["activeVersion"]["version"] == 2
    cli("labels", "create", "cli-docs")
    issue = cli.json("issues", "create", "the CLI", "-l", "cli-docs")
    preview = cli.json("templates", "preview", issue["id"])
    assert preview["prompt"] == "Please document the CLI." and preview["template"]["slug"] == "cli-docs"
    assert cli("templates", "preview", f"#{issue['number']}", "--plain").stdout.strip() == "Please document the CLI."
    assert cli.json("templates", "update", "cli-docs", "--specificity", "90")["specificity"] == 90


def test_templates_candidate_set_experiment_promote_history_and_rollback(cli: Cli) -> None:
    cli("templates", "create", "cli-exp", "Experiment")
    cli("templates", "version", "cli-exp", "-f", "-", input="v1 {{issue.id}}")
    cli("templates", "version", "cli-exp", "-f", "-", input="v2 {{issue.id}}")
    made = cli.json("templates", "candidate", "set", "cli-exp", "v2", "--share", "20", "--auto-promote")
    assert (made["candidateShare"], made["autoPromote"]) == (20, True)
    report = cli.json("templates", "experiment", "cli-exp")
    assert report["candidate"]["version"] == 2 and report["verdict"]["outcome"] == "not_enough_data"
    assert "Not enough data" in cli("templates", "experiment", "cli-exp").stdout
    assert cli.json("templates", "candidate", "promote", "cli-exp")["version"] == 2
    assert cli.json("templates", "rollback", "cli-exp")["version"] == 1
    history = cli("templates", "history", "cli-exp", "--plain").stdout.strip().splitlines()
    assert [line.split("\t")[1] for line in history] == ["rollback", "promote", "candidate_set"]
    cli.json("templates", "candidate", "set", "cli-exp", "v2", "--share", "5")
    assert cli.json("templates", "candidate", "clear", "cli-exp")["candidateVersionId"] is None
    assert "60 is not in the range" in cli("templates", "candidate", "set", "cli-exp", "v2", "--share", "60", code=2).stderr


def test_template_version_from_stdin_and_promote_on_creation(cli: Cli) -> None:
    cli("templates", "create", "cli-stdin", "From stdin")
    first = cli.json("templates", "version", "cli-stdin", "-f", "-", input="v1 {{issue.id}}")
    second = cli.json("templates", "version", "cli-stdin", "-f", "-", "--promote", "--agent", input="v2")
    assert first["status"] == "active" and second["status"] == "active" and second["authorType"] == "agent"


def test_template_errors_are_readable(cli: Cli, tmp_path: Path) -> None:
    assert cli.error("templates", "show", "no-such-template") == "error: no template with id or slug 'no-such-template'"
    cli("templates", "create", "cli-errs", "Errors")
    assert cli.error("templates", "create", "cli-errs", "Again") == "error: Template slug already exists"
    assert cli.error("templates", "promote", "cli-errs", "v9") == "error: template has no version v9"
    bad = tmp_path / "bad.hbs"
    bad.write_text("{{{raw}}}")
    assert "Triple-brace" in cli.error("templates", "version", "cli-errs", "-f", str(bad))
    assert "cannot read" in cli.error("templates", "version", "cli-errs", "-f", str(tmp_path / "nope.hbs"))
    assert "--conditions is not valid JSON" in cli.error("templates", "create", "cli-x", "X", "--conditions", "{")
    assert cli.error("templates", "create", "Not A Slug", "X").startswith("error: ")
    cli("templates", "delete", "cli-errs", "-y")
    assert cli.error("templates", "show", "cli-errs").startswith("error: no template")


def test_reviews_create_and_list(cli: Cli) -> None:
    made = cli.json("templates", "create", "cli-reviewed", "Reviewed", "-f", "-", input="Hi {{issue.title}}")
    issue = cli.json("issues", "create", "reviewed issue")
    review = cli.json("reviews", "create", "--version", made["version"]["id"], "--issue", issue["id"],
                      "--clarity", "5", "--completeness", "4", "--relevance", "3", "-m", "clear")
    assert (review["clarity"], review["authorType"]) == (5, "human")
    listed = cli.json("reviews", "list", "cli-reviewed")
    assert listed["total"] == 1 and listed["data"][0]["id"] == review["id"]
    assert "Invalid value for '--clarity'" in cli("reviews", "create", "--version", "v", "--issue", issue["id"],
                                                  "--clarity", "9", "--completeness", "1", "--relevance", "1",
                                                  code=2).stderr
    assert cli.error("reviews", "create", "--version", "nope", "--issue", issue["id"], "--clarity", "1",
                     "--completeness", "1", "--relevance", "1") == "error: Version not found"


# ------------------------------------------------------- next/dispatch/sessions
def test_next_prints_the_prompt_and_the_claim_then_heartbeat_release_sessions(cli: Cli) -> None:
    pid = project(cli, "cli next")
    issue = cli.json("issues", "create", "Claim from the CLI", "--status", "todo", "--project", pid)
    queue = cli.json("dispatch", "queue", "--project", pid)
    assert queue["total"] == 1 and queue["data"][0]["issue"]["id"] == issue["id"]
    assert "Claim from the CLI" in cli("dispatch", "queue", "--project", pid).stdout
    task = cli.json("next", "--project", pid)
    assert task["issue"]["id"] == issue["id"] and "Claim from the CLI" in task["prompt"]
    claim = task["claim"]
    assert cli.json("next", "--project", pid) is None
    assert "Nothing to do" in cli("next", "--project", pid).stdout
    beat = cli.json("dispatch", "heartbeat", claim["sessionId"], "--token", claim["token"])
    assert beat["status"] == "active"
    assert "Lease of" in cli("dispatch", "heartbeat", claim["sessionId"], LOOP_CLAIM_TOKEN=claim["token"]).stdout
    assert cli.json("dispatch", "session", claim["sessionId"])["status"] == "active"
    released = cli.json("dispatch", "release", claim["sessionId"], "--token", claim["token"], "-r", "not today")
    assert released["status"] == "released"
    sessions = cli.json("sessions", f"#{issue['number']}")
    assert sessions["total"] == 1 and sessions["data"][0]["reason"] == "not today"
    assert "released" in cli("sessions", issue["id"]).stdout
    assert cli.error("dispatch", "release", claim["sessionId"], "--token", claim["token"]).startswith("error: ")
    assert cli.error("dispatch", "heartbeat", "missing", "--token", "x") == "error: Session not found"


def test_release_failed_closes_the_session_as_failed_with_the_reason(cli: Cli) -> None:
    pid = project(cli, "cli release failed")
    issue = cli.json("issues", "create", "Fails from the CLI", "--status", "todo", "--project", pid)
    claim = cli.json("next", "--project", pid)["claim"]
    out = cli("dispatch", "release", claim["sessionId"], "--token", claim["token"], "--failed", "-r", "tests fail")
    assert f"Failed {claim['sessionId']}" in out.stdout
    (session,) = cli.json("sessions", issue["id"])["data"]
    assert session["status"] == "failed" and session["reason"] == "tests fail"
    assert cli.json("issues", "view", issue["id"])["status"] == "todo"


def test_next_in_table_mode_shows_the_prompt_text(cli: Cli) -> None:
    pid = project(cli, "cli next table")
    cli("issues", "create", "Readable prompt", "--status", "todo", "--project", pid)
    out = cli("next", "--project", pid).stdout
    assert "Claim token" in out and "Readable prompt" in out and "Prompt" in out


def test_config_project_is_the_default_for_next_and_queue(cli: Cli) -> None:
    pid = project(cli, "cli default project")
    issue = cli.json("issues", "create", "Defaulted", "--status", "todo", "--project", pid)
    cli("config", "set", "project", pid)
    assert [i["issue"]["id"] for i in cli.json("dispatch", "queue")["data"]] == [issue["id"]]
    created = cli.json("issues", "create", "Lands in the default project")
    assert created["projectId"] == pid


# -------------------------------------------------------------------- dashboard
def test_dashboard_stats_activity_and_prompts(cli: Cli) -> None:
    cli("issues", "create", "dash", "--status", "todo")
    stats: Any = cli.json("dashboard")
    assert stats["issues"]["total"] >= 1 and "queueDepth" in stats["dispatch"]
    table = cli("dashboard").stdout
    assert "Queue depth (todo + backlog)" in table and "Issues" in table
    activity = cli.json("dashboard", "activity", "--limit", "3")
    assert 1 <= len(activity["data"]) <= 3
    prompts = cli.json("dashboard", "prompts")["data"]
    assert any(p["template"]["slug"] == "task-execution" for p in prompts)
    assert "task-execution" in cli("dashboard", "prompts", "--plain").stdout
    status = json.loads(cli("status", "--json").stdout)
    assert status["stats"]["dispatch"]["queueDepth"] >= 1
