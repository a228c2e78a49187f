"""``loop issues ...``, ``loop comments ...`` and ``loop relations ...``."""

from __future__ import annotations

from typing import Any

import click

from loop.cli.common import (
    CliError,
    author_name,
    client,
    command,
    confirm_delete,
    default_project,
    page_options,
    parse_json,
    read_text,
    when,
)
from loop.cli.output import Column, Out, priority
from loop.client import LoopClient, NotFoundError
from loop.models import ISSUE_STATUSES, ISSUE_TYPES, OUTCOMES, RELATION_TYPES

ISSUE_COLUMNS: list[Column] = [("#", "number"), ("Status", "status"), ("Type", "type"),
                               ("Priority", priority), ("Title", "title"), ("ID", "id")]
PRIORITY_CHOICE = click.IntRange(0, 4)
NOT_BEFORE_HELP = "Do not dispatch before: relative (30m, 48h, 2d) or ISO 8601."
OUTCOME_HELP = "What the check found (monitors and hypotheses)."


def issue_number(ref: str) -> int | None:
    """The number of ``#12`` / ``12`` (an issue number), ``None`` for an id."""
    digits = ref.strip().removeprefix("#")
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None


def get_issue(loop: LoopClient, ref: str) -> dict[str, Any]:
    """One issue (with its detail) by id or number: the server finds numbers through its index."""
    number = issue_number(ref)
    try:
        return loop.issues.get(str(number) if number is not None else ref.strip())
    except NotFoundError:
        if number is None:
            raise
        raise CliError(f"no issue #{number}") from None


def resolve_issue(loop: LoopClient, ref: str) -> str:
    """An issue id from an id (returned as is), or from ``#12`` / ``12`` (one GET, not a scan)."""
    if issue_number(ref) is None:
        return ref.strip()
    return str(get_issue(loop, ref)["id"])


def resolve_labels(loop: LoopClient, refs: tuple[str, ...]) -> list[str]:
    """Label ids from ids or names (unknown names are an error, not a silent no-op)."""
    if not refs:
        return []
    labels = list(loop.labels.iter())
    by_name = {lb["name"]: lb["id"] for lb in labels}
    ids = {lb["id"] for lb in labels}
    out = []
    for ref in refs:
        if ref in ids:
            out.append(ref)
        elif ref in by_name:
            out.append(by_name[ref])
        else:
            raise CliError(f"no label named {ref!r} (create it with `loop labels create`)")
    return out


@click.group()
def issues() -> None:
    """List, view, create and change issues."""


@issues.command(name="list")
@click.option("--status", "-s", help="Comma-separated statuses, e.g. todo,in_progress.")
@click.option("--type", "-t", "type_", help="Comma-separated types.")
@click.option("--project", "-p", help="Project id.")
@click.option("--label", "-l", help="Label id or name.")
@click.option("--priority", type=PRIORITY_CHOICE, help="Exact priority 0-4.")
@click.option("--parent", help="Parent issue id or #number.")
@page_options
@click.option("--all", "all_", is_flag=True, help="Page through every matching issue.")
@command
def list_issues(out: Out, status: str | None, type_: str | None, project: str | None, label: str | None,
                priority: int | None, parent: str | None, limit: int, offset: int, all_: bool) -> None:
    """List issues (oldest first)."""
    loop = client()
    filters: dict[str, Any] = {"status": status, "type": type_, "project_id": project,
                               "label_id": resolve_labels(loop, (label,))[0] if label else None,
                               "priority": priority, "parent_id": resolve_issue(loop, parent) if parent else None}
    if all_:
        rows = list(loop.issues.iter(page_size=200, **filters))
        out.table(rows, ISSUE_COLUMNS, total=len(rows), empty="No issues.")
        return
    page = loop.issues.list(limit, offset, **filters)
    out.table(page.data, ISSUE_COLUMNS, total=page.total, empty="No issues.")


@issues.command()
@click.argument("issue")
@click.option("--comments/--no-comments", default=True, help="Also show the comment thread.")
@command
def view(out: Out, issue: str, comments: bool) -> None:
    """Show one issue with its parent, children, labels, relations and comments."""
    loop = client()
    row = get_issue(loop, issue)
    thread = loop.issues.comments(row["id"]) if comments else []
    if out.is_json:
        out.json({**row, **({"comments": thread} if comments else {})})
        return
    out.detail(row, [("ID", "id"), ("Number", "number"), ("Title", "title"), ("Type", "type"),
                     ("Status", "status"), ("Priority", priority), ("Project", "projectId"),
                     ("Parent", lambda r: f"#{r['parent']['number']} {r['parent']['title']}" if r.get("parent")
                      else None),
                     ("Labels", lambda r: ", ".join(lb["name"] for lb in r.get("labels") or []) or None),
                     ("Signal source", "signalSource"), ("Agent summary", "agentSummary"),
                     ("Created", "createdAt"), ("Updated", "updatedAt"), ("Completed", "completedAt")],
               title=f"#{row.get('number')} {row.get('title')}")
    if row.get("description"):
        out.section("Description")
        out.text(row["description"])
    if row.get("children"):
        out.section("Children")
        out.table(row["children"], ISSUE_COLUMNS)
    if row.get("relations"):
        out.section("Relations")
        out.table(row["relations"], [("Type", "type"), ("Related issue", "relatedIssueId"), ("ID", "id")])
    if row.get("incomingRelations"):
        out.section("Incoming relations")
        out.table(row["incomingRelations"], [("Type", "type"), ("From issue", "issueId"), ("ID", "id")])
    if thread:
        out.section("Comments")
        flat = [c2 for c in thread for c2 in [c, *[{**r, "authorName": "  ↳ " + r["authorName"]}
                                                    for r in c.get("replies") or []]]]
        out.table(flat, [("Author", "authorName"), ("Kind", "authorType"), ("Comment", "body"),
                         ("At", "createdAt")])


@issues.command()
@click.argument("title")
@click.option("--type", "-t", "type_", type=click.Choice(ISSUE_TYPES), default="task", show_default=True)
@click.option("--status", "-s", type=click.Choice(ISSUE_STATUSES), help="Default triage; todo makes it dispatchable.")
@click.option("--priority", type=PRIORITY_CHOICE, help="1 urgent .. 4 low, 0 none.")
@click.option("--description", "-d", help="Markdown description.")
@click.option("--description-file", help="Read the description from a file (- for stdin).")
@click.option("--parent", help="Parent issue id or #number.")
@click.option("--project", "-p", help="Project id (default: config `project`).")
@click.option("--label", "-l", "labels", multiple=True, help="Label id or name (repeatable).")
@click.option("--hypothesis", help="Hypothesis JSON {statement, confidence, evidence, validationCriteria}.")
@click.option("--not-before", help=NOT_BEFORE_HELP)
@command
def create(out: Out, title: str, type_: str, status: str | None, priority: int | None, description: str | None,
           description_file: str | None, parent: str | None, project: str | None, labels: tuple[str, ...],
           hypothesis: str | None, not_before: str | None) -> None:
    """Create an issue."""
    loop = client()
    if description_file:
        description = read_text(description_file)
    row = loop.issues.create(
        title, type_, status=status, priority=priority, description=description,
        parent_id=resolve_issue(loop, parent) if parent else None, project_id=default_project(project),
        label_ids=resolve_labels(loop, labels) or None, hypothesis=parse_json(hypothesis, "--hypothesis"),
        not_before=when(not_before) if not_before else None)
    after = f", not before {row['notBefore']}" if row.get("notBefore") else ""
    out.done(f"Created issue #{row['number']} {row['id']} ({row['status']}{after})", row)


def _set_status(out: Out, issue: str, status: str, verb: str, **extra: Any) -> None:
    loop = client()
    row = loop.issues.update(resolve_issue(loop, issue), status=status, **extra)
    out.done(f"{verb} #{row['number']} {row['title']} ({row['status']})", row)


@issues.command()
@click.argument("issue")
@command
def start(out: Out, issue: str) -> None:
    """Mark an issue in progress."""
    _set_status(out, issue, "in_progress", "Started")


@issues.command()
@click.argument("issue")
@click.option("--summary", "-m", help="What was done (stored as agentSummary).")
@click.option("--outcome", type=click.Choice(OUTCOMES), help=OUTCOME_HELP)
@command
def done(out: Out, issue: str, summary: str | None, outcome: str | None) -> None:
    """Mark an issue done (unblocks the issues it was blocking)."""
    extra: dict[str, Any] = {"agent_summary": summary} if summary else {}
    if outcome:
        extra["outcome"] = outcome
    _set_status(out, issue, "done", "Done:", **extra)


@issues.command()
@click.argument("issue")
@click.option("--title")
@click.option("--type", "-t", "type_", type=click.Choice(ISSUE_TYPES))
@click.option("--status", "-s", type=click.Choice(ISSUE_STATUSES))
@click.option("--priority", type=PRIORITY_CHOICE)
@click.option("--description", "-d")
@click.option("--parent", help="Parent issue id or #number.")
@click.option("--no-parent", is_flag=True, help="Make it a root issue.")
@click.option("--project", "-p")
@click.option("--no-project", is_flag=True, help="Remove it from its project.")
@click.option("--summary", help="Set agentSummary.")
@click.option("--not-before", help=NOT_BEFORE_HELP)
@click.option("--no-not-before", is_flag=True, help="Clear notBefore: dispatchable at once.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help=OUTCOME_HELP)
@command
def update(out: Out, issue: str, title: str | None, type_: str | None, status: str | None, priority: int | None,
           description: str | None, parent: str | None, no_parent: bool, project: str | None, no_project: bool,
           summary: str | None, not_before: str | None, no_not_before: bool, outcome: str | None) -> None:
    """Change fields of an issue (only the options given)."""
    loop = client()
    fields: dict[str, Any] = {k: v for k, v in {
        "title": title, "type": type_, "status": status, "priority": priority, "description": description,
        "agent_summary": summary, "project_id": project, "outcome": outcome,
        "not_before": when(not_before) if not_before else None}.items() if v is not None}
    if no_not_before:
        fields["not_before"] = None
    if parent:
        fields["parent_id"] = resolve_issue(loop, parent)
    if no_parent:
        fields["parent_id"] = None
    if no_project:
        fields["project_id"] = None
    if not fields:
        raise CliError("nothing to update: give at least one option (see --help)")
    row = loop.issues.update(resolve_issue(loop, issue), **fields)
    out.done(f"Updated #{row['number']} {row['title']}", row)


@issues.command()
@click.argument("issue")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@command
def delete(out: Out, issue: str, yes: bool) -> None:
    """Soft-delete an issue."""
    loop = client()
    issue_id = resolve_issue(loop, issue)
    confirm_delete(yes, f"issue {issue_id}")
    loop.issues.delete(issue_id)
    out.done(f"Deleted issue {issue_id}", {"deleted": issue_id})


@issues.command()
@click.argument("issue")
@click.argument("label")
@command
def label(out: Out, issue: str, label: str) -> None:
    """Attach LABEL (id or name) to ISSUE."""
    loop = client()
    issue_id = resolve_issue(loop, issue)
    loop.issues.add_label(issue_id, resolve_labels(loop, (label,))[0])
    out.done(f"Labelled {issue_id} with {label}")


@issues.command()
@click.argument("issue")
@click.argument("label")
@command
def unlabel(out: Out, issue: str, label: str) -> None:
    """Detach LABEL (id or name) from ISSUE."""
    loop = client()
    issue_id = resolve_issue(loop, issue)
    loop.issues.remove_label(issue_id, resolve_labels(loop, (label,))[0])
    out.done(f"Removed {label} from {issue_id}")


@click.group()
def comments() -> None:
    """Comment on issues."""


@comments.command(name="add")
@click.argument("issue")
@click.argument("body")
@click.option("--author", help="Author name (default: config `author`, else $USER).")
@click.option("--agent", is_flag=True, help="Post as an agent (authorType agent) instead of a human.")
@click.option("--reply-to", help="Parent comment id.")
@command
def comments_add(out: Out, issue: str, body: str, author: str | None, agent: bool, reply_to: str | None) -> None:
    """Add a comment (BODY; - reads it from stdin)."""
    loop = client()
    # `echo text | loop comments add 1 -`: the shell's final newline is not part of the comment.
    text = read_text("-").rstrip("\r\n") if body == "-" else body
    row = loop.issues.comment(resolve_issue(loop, issue), text, author_name=author_name(author),
                              author_type="agent" if agent else "human", parent_id=reply_to)
    out.done(f"Commented on {row['issueId']} ({row['id']})", row)


@comments.command(name="list")
@click.argument("issue")
@command
def comments_list(out: Out, issue: str) -> None:
    """Show an issue's comment thread."""
    loop = client()
    thread = loop.issues.comments(resolve_issue(loop, issue))
    flat = [c2 for c in thread for c2 in [c, *[{**r, "authorName": "↳ " + r["authorName"]}
                                                for r in c.get("replies") or []]]]
    out.table(flat, [("Author", "authorName"), ("Kind", "authorType"), ("Comment", "body"), ("At", "createdAt"),
                     ("ID", "id")], raw={"data": thread}, empty="No comments.")


@click.group()
def relations() -> None:
    """Relate issues: blocks, blocked_by, related, duplicate."""


@relations.command(name="add")
@click.argument("issue")
@click.argument("type_", metavar="TYPE", type=click.Choice(RELATION_TYPES))
@click.argument("related")
@command
def relations_add(out: Out, issue: str, type_: str, related: str) -> None:
    """ISSUE TYPE RELATED, e.g. `loop relations add #1 blocks #2`."""
    loop = client()
    row = loop.relations.create(resolve_issue(loop, issue), type_, resolve_issue(loop, related))
    out.done(f"{row['issueId']} {row['type']} {row['relatedIssueId']} ({row['id']})", row)


@relations.command(name="delete")
@click.argument("relation_id")
@command
def relations_delete(out: Out, relation_id: str) -> None:
    """Delete a relation by its id (see `loop issues view`)."""
    client().relations.delete(relation_id)
    out.done(f"Deleted relation {relation_id}", {"deleted": relation_id})


def register(main: click.Group) -> None:
    main.add_command(issues)
    main.add_command(comments)
    main.add_command(relations)
