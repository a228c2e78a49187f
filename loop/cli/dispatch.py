"""``loop next``, ``loop dispatch queue|heartbeat|release`` and ``loop sessions``."""

from __future__ import annotations

from typing import Any

import click

from loop.cli.common import client, command, default_project, page_options
from loop.cli.issues import resolve_issue
from loop.cli.output import Column, Out, priority

QUEUE_COLUMNS: list[Column] = [
    ("Score", "score"), ("#", "issue.number"), ("Type", "issue.type"), ("Priority", lambda r: priority(r["issue"])),
    ("Title", "issue.title"),
    ("Breakdown", lambda r: " ".join(f"{k.replace('Weight', '').replace('Bonus', '')}={v}"
                                     for k, v in (r.get("breakdown") or {}).items())),
    ("ID", "issue.id"),
]
SESSION_COLUMNS: list[Column] = [("Status", "status"), ("Agent", "agentName"), ("Claimed", "claimedAt"),
                                 ("Lease until", "expiresAt"), ("Ended", "endedAt"),
                                 ("Summary / reason", lambda s: s.get("summary") or s.get("reason")),
                                 ("ID", "id")]


@click.command(name="next")
@click.option("--project", "-p", help="Only claim issues of this project (default: config `project`).")
@command
def next_task(out: Out, project: str | None) -> None:
    """Claim the best eligible issue and print its prompt.

    The claim is a lease: renew it with `loop dispatch heartbeat`, finish with
    `loop issues done`, or hand it back with `loop dispatch release`.
    """
    task = client().dispatch.next(default_project(project))
    if task is None:
        if out.is_json:
            out.json(None)
        else:
            out.done("Nothing to do: the queue has no eligible issue.")
        return
    if out.is_json:
        out.json(task)
        return
    issue, claim, meta = task.get("issue") or {}, task.get("claim") or {}, task.get("meta") or {}
    out.detail({"issue": issue, "claim": claim, "meta": meta}, [
        ("Issue", lambda t: f"#{t['issue'].get('number')} {t['issue'].get('title')}"),
        ("ID", "issue.id"), ("Type", "issue.type"), ("Session", "claim.sessionId"), ("Claim token", "claim.token"),
        ("Lease until", "claim.expiresAt"),
        ("Template", lambda t: f"{t['meta'].get('templateSlug')} v{t['meta'].get('versionNumber')}"
         if t["meta"] else None),
        ("Version id", "meta.versionId")])
    out.section("Prompt")
    out.text(task.get("prompt") or "(no template matched this issue: no prompt)")


SCHEDULED_COLUMNS: list[Column] = [("Not before", "notBefore"), ("#", "number"), ("Type", "type"),
                                   ("Title", "title"), ("ID", "id")]


@click.group()
def dispatch() -> None:
    """The dispatch queue and claims."""


# `loop dispatch next` is `loop next` (both names are natural: the API route is /api/dispatch/next).
dispatch.add_command(next_task, name="next")


@dispatch.command(name="queue")
@click.option("--project", "-p")
@page_options
@command
def queue(out: Out, project: str | None, limit: int, offset: int) -> None:
    """Preview what dispatch would hand out, best first (claims nothing)."""
    page = client().dispatch.queue(limit, offset, project_id=default_project(project))
    out.table(page.data, QUEUE_COLUMNS, total=page.total, empty="The queue is empty.")


@dispatch.command(name="scheduled")
@page_options
@command
def scheduled(out: Out, limit: int, offset: int) -> None:
    """Issues waiting for their notBefore, soonest first (dispatch hands them out once due)."""
    page = client().dispatch.scheduled(limit, offset)
    out.table(page.data, SCHEDULED_COLUMNS, total=page.total, empty="Nothing is scheduled.")


@dispatch.command(name="heartbeat")
@click.argument("session_id")
@click.option("--token", required=True, envvar="LOOP_CLAIM_TOKEN", help="Claim token (or LOOP_CLAIM_TOKEN).")
@command
def heartbeat(out: Out, session_id: str, token: str) -> None:
    """Extend the lease of a claim."""
    row = client().dispatch.heartbeat(session_id, token)
    out.done(f"Lease of {session_id} extended to {_expiry(row)}", row)


@dispatch.command(name="release")
@click.argument("session_id")
@click.option("--token", required=True, envvar="LOOP_CLAIM_TOKEN", help="Claim token (or LOOP_CLAIM_TOKEN).")
@click.option("--reason", "-r", help="Why the work is handed back.")
@click.option("--failed", is_flag=True, help="The attempt failed: counts as a strike (after "
              "LOOP_MAX_LEASE_EXPIRIES strikes the server parks the issue with needs-human-review).")
@command
def release(out: Out, session_id: str, token: str, reason: str | None, failed: bool) -> None:
    """Hand a claimed issue back to the queue."""
    row = client().dispatch.release(session_id, token, reason, failed=failed)
    out.done(f"{'Failed' if failed else 'Released'} {session_id}", row)


def _expiry(row: dict[str, Any]) -> Any:
    return row.get("expiresAt") or "?"


@dispatch.command(name="session")
@click.argument("session_id")
@command
def session(out: Out, session_id: str) -> None:
    """Show one agent session."""
    row = client().dispatch.session(session_id)
    out.detail(row, [("ID", "id"), ("Issue", "issueId"), ("Agent", "agentName"), ("Status", "status"),
                     ("Claimed", "claimedAt"), ("Lease until", "expiresAt"), ("Ended", "endedAt"),
                     ("Summary", "summary"), ("Reason", "reason"), ("Prompt version", "versionId")])


@click.command()
@click.argument("issue")
@command
def sessions(out: Out, issue: str) -> None:
    """List the agent sessions (claims) of an issue."""
    loop = client()
    page = loop.issues.sessions(resolve_issue(loop, issue), 200)
    out.table(page.data, SESSION_COLUMNS, total=page.total, empty="No sessions.")


def register(main: click.Group) -> None:
    main.add_command(next_task)
    main.add_command(dispatch)
    main.add_command(sessions)
