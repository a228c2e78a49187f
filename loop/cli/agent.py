"""``loop work`` (the agent runner) and ``loop mcp`` (the MCP server)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from loop.cli.common import CliError, client, default_project, describe, resolve
from loop.client import LoopClient, LoopClientError, NotFoundError


@click.command()
@click.option("--command", "-c", "command_", required=True,
              help='The agent CLI, run in a shell with the prompt on stdin, e.g. "claude -p".')
@click.option("--cwd", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Working directory of the agent (default: the current directory).")
@click.option("--project", "-p", help="Only take issues of this project (default: config `project`).")
@click.option("--interval", type=click.FloatRange(0.1), default=10.0, show_default=True,
              help="Seconds between polls when the queue is empty.")
@click.option("--heartbeat", type=click.FloatRange(0.5), help="Seconds between heartbeats (default: lease/3).")
@click.option("--timeout", type=click.FloatRange(1), help="Kill an agent run after this many seconds.")
@click.option("--summary-file", help="File the agent may write its summary to (default: $LOOP_SUMMARY_FILE, "
              "a temporary file); else the last lines of its stdout are the summary.")
@click.option("--summary-lines", type=click.IntRange(1, 1000), default=30, show_default=True)
@click.option("--once", is_flag=True, help="Run a single cycle (claim at most one issue) and exit.")
@click.option("--max-tasks", type=click.IntRange(1), help="Exit after completing this many issues.")
def work(command_: str, cwd: Path | None, project: str | None, interval: float, heartbeat: float | None,
         timeout: float | None, summary_file: str | None, summary_lines: int, once: bool,
         max_tasks: int | None) -> None:
    """Run an agent on Loop's queue: claim, run, heartbeat, report, repeat.

    Exit 0 from the agent marks the issue done with a summary; any other exit releases the
    claim as failed with the error (a strike: the server parks an issue that keeps failing).
    SIGTERM/SIGINT release the current claim before exiting.
    """
    from loop.runner import Runner, RunnerConfig

    cfg = RunnerConfig(command=command_, cwd=cwd, project_id=default_project(project), poll_interval=interval,
                       heartbeat_interval=heartbeat, once=once, max_tasks=max_tasks, timeout=timeout,
                       summary_file=summary_file, summary_lines=summary_lines)
    loop = client()
    if cfg.project_id:
        _check_project(loop, cfg.project_id)
    runner = Runner(loop, cfg)
    runner.install_signal_handlers()
    if once:
        # One cycle, said out loud: an empty queue is not an error, but silence looked like one.
        outcome = runner.cycle()
        if outcome.status == "idle":
            where = f" of project {cfg.project_id}" if cfg.project_id else ""
            runner.log(f"nothing to do: no eligible issue in the queue{where}")
        raise SystemExit(0 if outcome.status in ("idle", "done") else 1)
    raise SystemExit(runner.run())


def _check_project(loop: LoopClient, project_id: str) -> None:
    """A runner polling a project that does not exist would wait forever: fail now instead."""
    try:
        loop.projects.get(project_id)
    except NotFoundError:
        raise CliError(f"no project {project_id!r} (see `loop projects list`)") from None
    except LoopClientError as exc:
        raise CliError(describe(exc)) from None


@click.command()
@click.option("--http", "http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--port", type=click.IntRange(1, 65535), envvar="LOOP_MCP_PORT",
              help="HTTP port (or LOOP_MCP_PORT; default PORT+2 when PORT is set, so `loop dev --port N` "
              "serves MCP on N+2, else 5669).")
@click.option("--api-url", help="Where the Loop API is, for --http (default: LOOP_API_URL, else LOOP_URL, else "
              "the configured url).")
def mcp(http: bool, host: str, port: int | None, api_url: str | None) -> None:
    """Serve Loop's tools over MCP.

    stdio (default): for Claude Code, Cursor, Codex... using the configured URL and key.
    --http: streamable HTTP at /mcp; each caller authenticates with its own Bearer key,
    which the tools use to call the API (LOOP_API_URL says where the API is).
    """
    from loop import mcp_server

    if http:
        url = api_url or os.environ.get("LOOP_API_URL") or os.environ.get("LOOP_URL") or str(resolve("url")[0])
        if port is None:
            base = os.environ.get("PORT", "")
            port = int(base) + 2 if base.isdigit() and int(base) + 2 <= 65535 else 5669
        mcp_server.run_http(url, host, port)
        return
    loop = client()
    if not loop.api_key:
        raise CliError("no API key: set LOOP_API_KEY or run `loop auth login`")
    mcp_server.run_stdio(loop)


def register(main: click.Group) -> None:
    main.add_command(work)
    main.add_command(mcp)
