"""``loop work`` end to end: a real runner process, a fake agent script and a live Loop with a
short lease and two strikes before parking (success, summary file, failure, parking by the server,
timeout, heartbeats, SIGTERM, polling)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import BIN, ROOT, LiveServer, live_server_fixture

FAKE = ROOT / "tests" / "fixtures" / "fake_agent.py"
LEASE = 5
STRIKES = 2  # LOOP_MAX_LEASE_EXPIRIES: failed runs after which the server parks an issue

live = live_server_fixture({"LOOP_LEASE_SECONDS": str(LEASE), "LOOP_MAX_LEASE_EXPIRIES": str(STRIKES)})


def agent(mode: str, record: Path | None = None, seconds: float | None = None) -> str:
    cmd = f"{sys.executable} {FAKE} {mode}"
    if record:
        cmd += f" --record {record}"
    if seconds is not None:
        cmd += f" --seconds {seconds}"
    return cmd


def work(live: LiveServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "loop"), "work", *args], env=live.env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def start_work(live: LiveServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "loop"), "work", *args], env=live.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def todo(live: LiveServer, title: str = "Runner task", n: int = 1) -> tuple[str, list[dict[str, Any]]]:
    loop = live.client()
    project = loop.projects.create(f"runner {title}")
    issues = [loop.issues.create(f"{title} {i}" if n > 1 else title, "task", status="todo",
                                 description="Make the tests pass", project_id=project["id"]) for i in range(n)]
    return project["id"], issues


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_successful_agent_gets_the_prompt_and_the_issue_is_done_with_its_output(live: LiveServer,
                                                                                  tmp_path: Path) -> None:
    project, (issue,) = todo(live, "Fix the flaky test")
    record = tmp_path / "record.json"
    result = work(live, "--command", agent("success", record), "--once", "--project", project,
                  "--cwd", str(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert "Fix the flaky test" in seen["prompt"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["env"]["LOOP_ISSUE_ID"] == issue["id"] and seen["env"]["LOOP_CLAIM_TOKEN"]
    assert seen["env"]["LOOP_API_URL"] == live.url
    done = live.client().issues.get(issue["id"])
    assert done["status"] == "done" and done["agentSummary"].endswith("SUMMARY: fixed the bug")
    (session,) = live.client().issues.sessions(issue["id"]).data
    assert session["status"] == "completed" and session["id"] == seen["env"]["LOOP_SESSION_ID"]
    assert "changed 3 files" in result.stdout  # the agent's output is passed through


def test_a_summary_file_written_by_the_agent_is_the_summary(live: LiveServer, tmp_path: Path) -> None:
    project, (issue,) = todo(live, "Summarise")
    assert work(live, "--command", agent("summary-file"), "--once", "--project", project).returncode == 0
    assert live.client().issues.get(issue["id"])["agentSummary"] == "Summary from the file"


def test_an_agent_that_completes_the_issue_itself_is_not_overwritten(live: LiveServer) -> None:
    project, (issue,) = todo(live, "Self reporting")
    result = work(live, "--command", agent("self-complete"), "--once", "--project", project)
    assert result.returncode == 0, result.stderr
    done = live.client().issues.get(issue["id"])
    assert done["status"] == "done" and done["agentSummary"] == "done by the agent itself"


def test_a_failing_agent_releases_the_claim_as_failed_with_its_error(live: LiveServer) -> None:
    project, (issue,) = todo(live, "Will fail")
    result = work(live, "--command", agent("fail"), "--once", "--project", project)
    assert result.returncode == 1
    assert "claim released as failed" in result.stderr
    loop = live.client()
    assert loop.issues.get(issue["id"])["status"] == "todo"  # one strike of two: back in the queue
    (session,) = loop.issues.sessions(issue["id"]).data
    assert session["status"] == "failed"
    assert "exited with status 3" in session["reason"] and "fatal: could not apply the patch" in session["reason"]


def test_an_issue_that_keeps_failing_is_parked_for_a_human_by_the_server(live: LiveServer, tmp_path: Path) -> None:
    project, (issue,) = todo(live, "Always fails")
    for _ in range(STRIKES):
        assert work(live, "--command", agent("fail"), "--once", "--project", project).returncode == 1
    loop = live.client()
    parked = loop.issues.get(issue["id"])
    assert parked["status"] == "backlog"
    assert "needs-human-review" in [lb["name"] for lb in parked["labels"]]
    sessions = loop.issues.sessions(issue["id"]).data
    assert [s["status"] for s in sessions] == ["failed"] * STRIKES
    assert all("fatal: could not apply" in s["reason"] for s in sessions)
    assert loop.dispatch.queue(project_id=project).total == 0
    # The next runner finds nothing to do: the agent never runs on it again.
    record = tmp_path / "never.json"
    assert work(live, "--command", agent("fail", record), "--once", "--project", project).returncode == 0
    assert not record.exists()


def test_an_agent_over_its_timeout_is_killed_and_the_claim_released_as_failed(live: LiveServer) -> None:
    project, (issue,) = todo(live, "Too slow")
    started = time.monotonic()
    result = work(live, "--command", agent("sleep", seconds=30), "--once", "--timeout", "1", "--project", project)
    assert result.returncode == 1 and time.monotonic() - started < 20
    (session,) = live.client().issues.sessions(issue["id"]).data
    assert session["status"] == "failed" and "timed out after 1s" in session["reason"]


@pytest.mark.slow
def test_heartbeats_keep_a_claim_alive_past_its_lease(live: LiveServer) -> None:
    project, (issue,) = todo(live, "Long work")
    result = work(live, "--command", agent("sleep", seconds=LEASE + 1.5), "--once", "--heartbeat", "0.5",
                  "--project", project)
    assert result.returncode == 0, result.stderr
    (session,) = live.client().issues.sessions(issue["id"]).data
    assert session["status"] == "completed"
    assert live.client().issues.get(issue["id"])["status"] == "done"


def test_sigterm_stops_the_agent_and_releases_the_claim_before_exiting(live: LiveServer, tmp_path: Path) -> None:
    project, (issue,) = todo(live, "Interrupted")
    record = tmp_path / "rec.json"
    proc = start_work(live, "--command", agent("sleep", record, seconds=60), "--project", project,
                      "--interval", "0.2")
    try:
        wait_for(record.exists)
        time.sleep(0.3)  # let the agent install its SIGTERM handler
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "agent got SIGTERM" in out
    loop = live.client()
    assert loop.issues.get(issue["id"])["status"] == "todo"
    (session,) = loop.issues.sessions(issue["id"]).data
    assert session["status"] == "released" and session["reason"] == "runner stopped by SIGTERM"
    pid_alive = subprocess.run(["pgrep", "-f", f"{record}"], capture_output=True).returncode == 0
    assert not pid_alive


def test_the_runner_polls_and_works_through_the_queue(live: LiveServer) -> None:
    project, issues = todo(live, "Batch", n=2)
    result = work(live, "--command", agent("success"), "--project", project, "--interval", "0.1",
                  "--max-tasks", "2")
    assert result.returncode == 0, result.stderr
    loop = live.client()
    assert [loop.issues.get(i["id"])["status"] for i in issues] == ["done", "done"]


def test_an_empty_queue_with_once_exits_zero_without_running_the_agent(live: LiveServer, tmp_path: Path) -> None:
    project = live.client().projects.create("runner empty")["id"]
    record = tmp_path / "never.json"
    result = work(live, "--command", agent("success", record), "--once", "--project", project)
    assert result.returncode == 0 and not record.exists()


def test_an_unreachable_server_is_reported_and_once_fails(live: LiveServer) -> None:
    from tests.redis_server import free_port

    env = {**live.env, "LOOP_API_URL": f"http://127.0.0.1:{free_port()}"}
    result = subprocess.run([str(BIN / "loop"), "work", "--command", "true", "--once"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "cannot claim work: Cannot reach Loop" in result.stderr
    assert os.environ.get("LOOP_API_URL") != env["LOOP_API_URL"]


def test_a_heartbeat_interval_longer_than_the_lease_is_replaced_by_a_third_of_it(live: LiveServer) -> None:
    from loop.runner import Runner, RunnerConfig

    logs: list[str] = []
    runner = Runner(live.client(), RunnerConfig(command="true", heartbeat_interval=600), log=logs.append,
                    clock=lambda: 1000.0)
    assert runner._heartbeat_every({"expiresAt": "1970-01-01T00:16:55.000Z"}) == 5.0  # 15 s lease
    assert "not shorter than the 15s lease" in logs[0]
    runner.cfg.heartbeat_interval = 2
    assert runner._heartbeat_every({"expiresAt": "1970-01-01T00:16:55.000Z"}) == 2
