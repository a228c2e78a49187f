"""``loop templates ...`` and ``loop reviews ...``: the prompt engine from the terminal."""

from __future__ import annotations

from typing import Any

import click

from loop.cli.common import (
    CliError,
    author_name,
    client,
    command,
    confirm_delete,
    page_options,
    parse_json,
    read_text,
)
from loop.cli.issues import resolve_issue
from loop.cli.output import Column, Out
from loop.client import LoopClient

TEMPLATE_COLUMNS: list[Column] = [("Slug", "slug"), ("Name", "name"), ("Specificity", "specificity"),
                                  ("Conditions", "conditions"), ("Active version", "activeVersionId"),
                                  ("ID", "id")]
VERSION_COLUMNS: list[Column] = [("Version", "version"), ("Status", "status"), ("Author", "authorName"),
                                 ("Uses", "usageCount"), ("Score", "reviewScore"),
                                 ("Completion", "completionRate"), ("Changelog", "changelog"), ("ID", "id")]
REVIEW_COLUMNS: list[Column] = [("Version", "versionId"), ("Issue", "issueId"), ("Clarity", "clarity"),
                                ("Completeness", "completeness"), ("Relevance", "relevance"),
                                ("Feedback", "feedback"), ("By", "authorType"), ("At", "createdAt")]


def resolve_template(loop: LoopClient, ref: str) -> str:
    """A template id from an id or a slug."""
    for row in loop.templates.iter(page_size=200):
        if ref in (row.get("id"), row.get("slug")):
            return str(row["id"])
    raise CliError(f"no template with id or slug {ref!r}")


def resolve_version(loop: LoopClient, template_id: str, ref: str) -> str:
    """A version id from an id, or from a version number (``3`` or ``v3``)."""
    text = ref.lower().lstrip("v")
    if not text.isdigit():
        return ref
    for row in loop.templates.iter_versions(template_id):
        if row.get("version") == int(text):
            return str(row["id"])
    raise CliError(f"template has no version {ref}")


@click.group()
def templates() -> None:
    """Prompt templates and their versions."""


@templates.command(name="list")
@page_options
@command
def templates_list(out: Out, limit: int, offset: int) -> None:
    """List templates."""
    page = client().templates.list(limit, offset)
    out.table(page.data, TEMPLATE_COLUMNS, total=page.total, empty="No templates.")


@templates.command(name="show")
@click.argument("template")
@click.option("--content/--no-content", default=True, help="Print the active version's content.")
@command
def templates_show(out: Out, template: str, content: bool) -> None:
    """Show a template (id or slug), its active version and version history."""
    loop = client()
    tid = resolve_template(loop, template)
    row = loop.templates.get(tid)
    versions = loop.templates.versions(tid, 200)
    if out.is_json:
        out.json({**row, "versions": versions.data})
        return
    active = row.get("activeVersion") or {}
    out.detail(row, [("ID", "id"), ("Slug", "slug"), ("Name", "name"), ("Description", "description"),
                     ("Conditions", "conditions"), ("Specificity", "specificity"), ("Project", "projectId"),
                     ("Active version", lambda r: f"v{active.get('version')} ({active.get('id')})" if active
                      else None)])
    out.section("Versions")
    out.table(versions.data, VERSION_COLUMNS, empty="No versions.")
    if content and active.get("content"):
        out.section(f"Content of v{active.get('version')}")
        out.text(active["content"])


@templates.command(name="create")
@click.argument("slug")
@click.argument("name")
@click.option("--description", "-d")
@click.option("--conditions", help='JSON, e.g. {"type": "task", "labels": ["frontend"]}.')
@click.option("--specificity", type=click.IntRange(0, 100))
@click.option("--project", "-p", help="Project id (boosts the template for that project).")
@click.option("--file", "-f", "file", help="Create a first version from this file (- for stdin).")
@click.option("--changelog")
@click.option("--author", help="Version author name.")
@command
def templates_create(out: Out, slug: str, name: str, description: str | None, conditions: str | None,
                     specificity: int | None, project: str | None, file: str | None, changelog: str | None,
                     author: str | None) -> None:
    """Create a template (and, with --file, its first version, which becomes active)."""
    loop = client()
    content = read_text(file) if file else None
    row = loop.templates.create(slug, name, description=description, conditions=parse_json(conditions,
                                "--conditions"), specificity=specificity, project_id=project)
    result: dict[str, Any] = {"template": row}
    message = f"Created template {row['slug']} ({row['id']})"
    if content is not None:
        version = loop.templates.create_version(row["id"], content, changelog=changelog,
                                                author_name=author_name(author), author_type="human")
        result["version"] = version
        message += f" with v{version['version']} ({version['status']})"
    out.done(message, result)


@templates.command(name="update")
@click.argument("template")
@click.option("--name")
@click.option("--description", "-d")
@click.option("--conditions", help="JSON conditions (replaces them).")
@click.option("--specificity", type=click.IntRange(0, 100))
@click.option("--project", "-p")
@command
def templates_update(out: Out, template: str, name: str | None, description: str | None,
                     conditions: str | None, specificity: int | None, project: str | None) -> None:
    """Change a template's metadata (content changes are new versions)."""
    loop = client()
    fields = {k: v for k, v in {"name": name, "description": description, "specificity": specificity,
                                "project_id": project, "conditions": parse_json(conditions, "--conditions")
                                }.items() if v is not None}
    if not fields:
        raise CliError("nothing to update: give at least one option (see --help)")
    row = loop.templates.update(resolve_template(loop, template), **fields)
    out.done(f"Updated template {row['slug']}", row)


@templates.command(name="delete")
@click.argument("template")
@click.option("--yes", "-y", is_flag=True)
@command
def templates_delete(out: Out, template: str, yes: bool) -> None:
    """Soft-delete a template."""
    loop = client()
    tid = resolve_template(loop, template)
    confirm_delete(yes, f"template {template}")
    loop.templates.delete(tid)
    out.done(f"Deleted template {template}", {"deleted": tid})


@templates.command(name="version")
@click.argument("template")
@click.option("--file", "-f", "file", required=True, help="The new content (- for stdin).")
@click.option("--changelog", "-m")
@click.option("--author", help="Author name.")
@click.option("--agent", is_flag=True, help="Record the author as an agent.")
@click.option("--promote", is_flag=True, help="Make the new version active right away.")
@command
def templates_version(out: Out, template: str, file: str, changelog: str | None, author: str | None, agent: bool,
                      promote: bool) -> None:
    """Add a new version of a template from a file (a draft unless --promote)."""
    loop = client()
    tid = resolve_template(loop, template)
    version = loop.templates.create_version(tid, read_text(file), changelog=changelog,
                                            author_name=author_name(author),
                                            author_type="agent" if agent else "human")
    if promote and version.get("status") != "active":
        version = loop.templates.promote(tid, version["id"])
    out.done(f"Created v{version['version']} of {template} ({version['status']}, {version['id']})", version)


@templates.command(name="versions")
@click.argument("template")
@command
def templates_versions(out: Out, template: str) -> None:
    """List a template's versions, newest first."""
    loop = client()
    rows = list(loop.templates.iter_versions(resolve_template(loop, template)))
    out.table(rows, VERSION_COLUMNS, total=len(rows), empty="No versions.")


@templates.command(name="promote")
@click.argument("template")
@click.argument("version")
@command
def templates_promote(out: Out, template: str, version: str) -> None:
    """Make VERSION (id, or number like 3 / v3) the active version of TEMPLATE."""
    loop = client()
    tid = resolve_template(loop, template)
    row = loop.templates.promote(tid, resolve_version(loop, tid, version))
    out.done(f"Promoted v{row['version']} of {template} (now {row['status']})", row)


EVIDENCE_COLUMNS: list[Column] = [("Side", "side"), ("Version", "version"), ("Claimed", "claimed"),
                                  ("Completed", "completed"), ("Failed", "failed"), ("Expired", "expired"),
                                  ("Released", "released"), ("Completion", "completionRate"),
                                  ("Median ms", "medianDurationMs"), ("Reviews", "reviewCount"),
                                  ("Mean score", "meanReviewScore"), ("ID", "versionId")]
HISTORY_COLUMNS: list[Column] = [("At", "at"), ("Action", "action"), ("By", "actor"), ("From", "fromVersionId"),
                                 ("To", "toVersionId"), ("Reason", "reason")]


@templates.command(name="experiment")
@click.argument("template")
@command
def templates_experiment(out: Out, template: str) -> None:
    """Active vs candidate version of TEMPLATE side by side, and the decision rule's verdict."""
    loop = client()
    report = loop.templates.experiment(resolve_template(loop, template))
    if out.is_json:
        out.json(report)
        return
    rows = [{"side": side, **report[side]} for side in ("active", "candidate") if report.get(side)]
    out.table(rows, EVIDENCE_COLUMNS, title=f"Experiment ({report.get('candidateShare') or 0}% candidate, "
                                            f"autoPromote {report.get('autoPromote')})")
    verdict = report.get("verdict")
    out.line(verdict["statement"] if verdict else "No candidate: start one with `loop templates candidate set`.")


@templates.group(name="candidate")
def candidate() -> None:
    """Try a version on a share of live dispatches (docs/prompts.md, "Experiments")."""


@candidate.command(name="set")
@click.argument("template")
@click.argument("version")
@click.option("--share", type=click.IntRange(1, 50), required=True, help="Percent of dispatches (1-50).")
@click.option("--auto-promote", is_flag=True, help="Let Loop promote it on evidence.")
@command
def candidate_set(out: Out, template: str, version: str, share: int, auto_promote: bool) -> None:
    """Make VERSION (id, or number like 3 / v3) the candidate of TEMPLATE."""
    loop = client()
    tid = resolve_template(loop, template)
    row = loop.templates.set_candidate(tid, resolve_version(loop, tid, version), share, auto_promote=auto_promote)
    out.done(f"Candidate of {template}: {row['candidateVersionId']} on {share}% of dispatches", row)


@candidate.command(name="clear")
@click.argument("template")
@command
def candidate_clear(out: Out, template: str) -> None:
    """End TEMPLATE's experiment without a switch."""
    loop = client()
    out.done(f"Cleared the candidate of {template}", loop.templates.clear_candidate(resolve_template(loop, template)))


@candidate.command(name="promote")
@click.argument("template")
@command
def candidate_promote(out: Out, template: str) -> None:
    """Promote TEMPLATE's candidate now."""
    loop = client()
    row = loop.templates.promote_candidate(resolve_template(loop, template))
    out.done(f"Promoted v{row['version']} of {template}", row)


@candidate.command(name="withdraw")
@click.argument("template")
@command
def candidate_withdraw(out: Out, template: str) -> None:
    """Withdraw TEMPLATE's candidate (recorded as a withdrawal)."""
    loop = client()
    out.done(f"Withdrew the candidate of {template}",
             loop.templates.withdraw_candidate(resolve_template(loop, template)))


@templates.command(name="rollback")
@click.argument("template")
@command
def templates_rollback(out: Out, template: str) -> None:
    """Re-activate the version of TEMPLATE that the last promotion retired."""
    loop = client()
    row = loop.templates.rollback(resolve_template(loop, template))
    out.done(f"Rolled {template} back to v{row['version']}", row)


@templates.command(name="history")
@click.argument("template")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@command
def templates_history(out: Out, template: str, limit: int, offset: int) -> None:
    """Decisions on TEMPLATE's versions (who or what, when, the figures), newest first."""
    loop = client()
    page = loop.templates.history(resolve_template(loop, template), limit, offset)
    out.table(page.data, HISTORY_COLUMNS, total=page.total, empty="No decisions yet.")


@templates.command(name="preview")
@click.argument("issue")
@command
def templates_preview(out: Out, issue: str) -> None:
    """Render the prompt an agent would get for ISSUE (claims nothing)."""
    loop = client()
    result = loop.templates.preview(resolve_issue(loop, issue))
    if out.is_json:
        out.json(result)
        return
    tpl = result.get("template") or {}
    ver = result.get("version") or {}
    if out.mode != "plain":
        out.console.print(f"[dim]template {tpl.get('slug')} v{ver.get('version')}[/dim]" if tpl else
                          f"[yellow]{result.get('message') or 'No matching template'}[/yellow]")
    if result.get("prompt"):
        out.text(result["prompt"])


@click.group()
def reviews() -> None:
    """Prompt reviews: how good was the prompt an agent received?"""


@reviews.command(name="list")
@click.argument("template")
@page_options
@command
def reviews_list(out: Out, template: str, limit: int, offset: int) -> None:
    """List the reviews of a template's versions, newest first."""
    loop = client()
    page = loop.templates.reviews(resolve_template(loop, template), limit, offset)
    out.table(page.data, REVIEW_COLUMNS, total=page.total, empty="No reviews.")


@reviews.command(name="create")
@click.option("--version", "version_id", required=True, help="Prompt version id (meta.versionId of a task).")
@click.option("--issue", required=True, help="The issue the prompt was for.")
@click.option("--clarity", type=click.IntRange(1, 5), required=True)
@click.option("--completeness", type=click.IntRange(1, 5), required=True)
@click.option("--relevance", type=click.IntRange(1, 5), required=True)
@click.option("--feedback", "-m")
@click.option("--agent", is_flag=True, help="Submit as an agent (default human).")
@command
def reviews_create(out: Out, version_id: str, issue: str, clarity: int, completeness: int, relevance: int,
                   feedback: str | None, agent: bool) -> None:
    """Review a prompt version (scores 1-5)."""
    loop = client()
    row = loop.reviews.create(version_id, resolve_issue(loop, issue), clarity, completeness, relevance,
                              feedback=feedback, author_type="agent" if agent else "human")
    out.done(f"Recorded review {row['id']}", row)


def register(main: click.Group) -> None:
    main.add_command(templates)
    main.add_command(reviews)
