"""``loop signals ingest|list|view`` and ``loop triage [accept|decline]``."""

from __future__ import annotations

from typing import Any

import click

from loop.cli.common import CliError, author_name, client, command, page_options, parse_json, read_text
from loop.cli.issues import ISSUE_COLUMNS, resolve_issue
from loop.cli.output import Column, Out
from loop.models import SEVERITIES

SIGNAL_COLUMNS: list[Column] = [("Source", "source"), ("Type", "type"), ("Severity", "severity"),
                                ("Issue", "issueId"), ("Group", "groupCount"), ("Created", "createdAt"),
                                ("ID", "id")]


@click.group()
def signals() -> None:
    """Signals: errors, metrics and events that become triage issues."""


@signals.command(name="ingest")
@click.option("--source", required=True, help="Where it came from, e.g. sentry, ci, manual.")
@click.option("--type", "-t", "type_", required=True, help="Free-text kind, e.g. error, metric_spike.")
@click.option("--severity", type=click.Choice(SEVERITIES), default="medium", show_default=True)
@click.option("--message", "-m", help="Shortcut for a payload {\"message\": ...} (becomes the issue title).")
@click.option("--payload", help="Payload JSON object.")
@click.option("--payload-file", help="Read the payload JSON from a file (- for stdin).")
@click.option("--source-id", help="The provider's id for this event.")
@click.option("--project", "-p", help="Project id.")
@click.option("--fingerprint", help="Group key (1-200 chars): while its issue is open, the same fingerprint "
                                    "joins it instead of opening another.")
@command
def ingest(out: Out, source: str, type_: str, severity: str, message: str | None, payload: str | None,
           payload_file: str | None, source_id: str | None, project: str | None, fingerprint: str | None) -> None:
    """Record a signal; it creates a triage issue (promoted to todo when the server is set so), or
    joins the open issue of its --fingerprint."""
    if payload and payload_file:
        raise CliError("give --payload or --payload-file, not both")
    body: Any = parse_json(read_text(payload_file), "the payload file") if payload_file else \
        parse_json(payload, "--payload") if payload else {}
    if not isinstance(body, dict):
        raise CliError("the payload must be a JSON object")
    if message:
        body = {**body, "message": message}
    result = client().signals.ingest(source, type_, severity, body, source_id=source_id, project_id=project,
                                     fingerprint=fingerprint)
    issue = result.get("issue") or {}
    grouped = f", grouped: {issue.get('signalCount')} signals" if result.get("grouped") else ""
    out.done(f"Signal {result['signal']['id']} -> issue #{issue.get('number')} {issue.get('title')} "
             f"({issue.get('status')}{grouped})", result)


@signals.command(name="list")
@click.option("--source")
@click.option("--severity", type=click.Choice(SEVERITIES))
@click.option("--project", "-p")
@page_options
@command
def signals_list(out: Out, source: str | None, severity: str | None, project: str | None, limit: int,
                 offset: int) -> None:
    """List signals, newest first; Group is how many signals their issue holds."""
    page = client().signals.list(limit, offset, source=source, severity=severity, project_id=project)
    out.table(page.data, SIGNAL_COLUMNS, total=page.total, empty="No signals.")


@signals.command(name="view")
@click.argument("signal_id")
@command
def signals_view(out: Out, signal_id: str) -> None:
    """Show a signal and its payload."""
    row = client().signals.get(signal_id)
    out.detail(row, [("ID", "id"), ("Source", "source"), ("Source id", "sourceId"), ("Type", "type"),
                     ("Severity", "severity"), ("Issue", "issueId"), ("Fingerprint", "fingerprint"),
                     ("Created", "createdAt"),
                     ("Payload", "payload")])


@click.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--project", "-p")
@click.pass_context
@command
def triage(out: Out, ctx: click.Context, limit: int, project: str | None) -> None:
    """List issues waiting in triage; `accept` or `decline` them."""
    if ctx.invoked_subcommand is not None:
        return
    page = client().issues.list(limit, 0, status="triage", project_id=project)
    out.table(page.data, ISSUE_COLUMNS, total=page.total, empty="Triage is empty.")


@triage.command(name="accept")
@click.argument("issue")
@click.option("--to", "to", type=click.Choice(("todo", "backlog")), default="todo", show_default=True,
              help="todo makes it dispatchable now; backlog keeps it for later.")
@click.option("--priority", type=click.IntRange(0, 4))
@command
def accept(out: Out, issue: str, to: str, priority: int | None) -> None:
    """Accept a triage issue into the queue."""
    loop = client()
    extra: dict[str, Any] = {"priority": priority} if priority is not None else {}
    row = loop.issues.update(resolve_issue(loop, issue), status=to, **extra)
    out.done(f"Accepted #{row['number']} {row['title']} -> {row['status']}", row)


@triage.command(name="decline")
@click.argument("issue")
@click.option("--reason", "-r", help="Why; recorded as a comment.")
@click.option("--author", help="Author of the comment.")
@command
def decline(out: Out, issue: str, reason: str | None, author: str | None) -> None:
    """Decline a triage issue (canceled), optionally saying why."""
    loop = client()
    issue_id = resolve_issue(loop, issue)
    row = loop.issues.update(issue_id, status="canceled")
    if reason:
        loop.issues.comment(issue_id, f"Declined in triage: {reason}", author_name=author_name(author),
                            author_type="human")
    out.done(f"Declined #{row['number']} {row['title']}", row)


def register(main: click.Group) -> None:
    main.add_command(signals)
    main.add_command(triage)
