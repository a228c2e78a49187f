"""``loop projects ...``, ``loop goals ...`` and ``loop labels ...``."""

from __future__ import annotations

from typing import Any

import click

from loop.cli.common import CliError, client, command, confirm_delete, page_options
from loop.cli.output import Column, Out
from loop.models import GOAL_STATUSES, PROJECT_HEALTH, PROJECT_STATUSES

PROJECT_COLUMNS: list[Column] = [("Name", "name"), ("Status", "status"), ("Health", "health"), ("Goal", "goalId"),
                                 ("ID", "id")]
GOAL_COLUMNS: list[Column] = [("Title", "title"), ("Status", "status"),
                              ("Progress", lambda g: _progress(g)), ("Project", "projectId"), ("ID", "id")]
LABEL_COLUMNS: list[Column] = [("Name", "name"), ("Colour", "color"), ("ID", "id")]


def _progress(goal: dict[str, Any]) -> str | None:
    if goal.get("targetValue") is None and goal.get("currentValue") is None:
        return None
    unit = goal.get("unit") or ""
    return f"{goal.get('currentValue') or 0:g}{unit} / {goal.get('targetValue') or 0:g}{unit}"


def _changes(**kw: Any) -> dict[str, Any]:
    fields = {k: v for k, v in kw.items() if v is not None}
    if not fields:
        raise CliError("nothing to update: give at least one option (see --help)")
    return fields


def _listing(out: Out, svc: Any, columns: list[Column], limit: int, offset: int, all_: bool, empty: str) -> None:
    if all_:
        rows = list(svc.iter(page_size=200))
        out.table(rows, columns, total=len(rows), empty=empty)
    else:
        page = svc.list(limit, offset)
        out.table(page.data, columns, total=page.total, empty=empty)


def _paging(fn: Any) -> Any:
    return page_options(click.option("--all", "all_", is_flag=True, help="Page through everything.")(fn))


# ------------------------------------------------------------------ projects
@click.group()
def projects() -> None:
    """Projects group issues (and may point at a goal)."""


@projects.command(name="list")
@_paging
@command
def projects_list(out: Out, limit: int, offset: int, all_: bool) -> None:
    """List projects."""
    _listing(out, client().projects, PROJECT_COLUMNS, limit, offset, all_, "No projects.")


@projects.command(name="view")
@click.argument("project_id")
@command
def projects_view(out: Out, project_id: str) -> None:
    """Show a project with its goal and issue counts by status."""
    row = client().projects.get(project_id)
    out.detail(row, [("ID", "id"), ("Name", "name"), ("Description", "description"), ("Status", "status"),
                     ("Health", "health"), ("Goal", lambda r: (r.get("goal") or {}).get("title")),
                     ("Issues", lambda r: ", ".join(f"{k}: {v}" for k, v in (r.get("issueCounts") or {}).items())
                      or None), ("Created", "createdAt"), ("Updated", "updatedAt")])


@projects.command(name="create")
@click.argument("name")
@click.option("--description", "-d")
@click.option("--status", type=click.Choice(PROJECT_STATUSES))
@click.option("--health", type=click.Choice(PROJECT_HEALTH))
@click.option("--goal", help="Goal id.")
@command
def projects_create(out: Out, name: str, description: str | None, status: str | None, health: str | None,
                    goal: str | None) -> None:
    """Create a project."""
    row = client().projects.create(name, description=description, status=status, health=health, goal_id=goal)
    out.done(f"Created project {row['name']} ({row['id']})", row)


@projects.command(name="update")
@click.argument("project_id")
@click.option("--name")
@click.option("--description", "-d")
@click.option("--status", type=click.Choice(PROJECT_STATUSES))
@click.option("--health", type=click.Choice(PROJECT_HEALTH))
@click.option("--goal", help="Goal id.")
@click.option("--no-goal", is_flag=True, help="Detach the goal.")
@command
def projects_update(out: Out, project_id: str, name: str | None, description: str | None, status: str | None,
                    health: str | None, goal: str | None, no_goal: bool) -> None:
    """Change a project."""
    fields = {"name": name, "description": description, "status": status, "health": health, "goal_id": goal}
    if no_goal:
        row = client().projects.update(project_id, **{k: v for k, v in fields.items() if v is not None},
                                       goal_id=None)
    else:
        row = client().projects.update(project_id, **_changes(**fields))
    out.done(f"Updated project {row['name']}", row)


@projects.command(name="delete")
@click.argument("project_id")
@click.option("--yes", "-y", is_flag=True)
@command
def projects_delete(out: Out, project_id: str, yes: bool) -> None:
    """Soft-delete a project (its issues stay)."""
    confirm_delete(yes, f"project {project_id}")
    client().projects.delete(project_id)
    out.done(f"Deleted project {project_id}", {"deleted": project_id})


# --------------------------------------------------------------------- goals
@click.group()
def goals() -> None:
    """Goals give projects a target (and their issues a dispatch bonus)."""


@goals.command(name="list")
@_paging
@command
def goals_list(out: Out, limit: int, offset: int, all_: bool) -> None:
    """List goals."""
    _listing(out, client().goals, GOAL_COLUMNS, limit, offset, all_, "No goals.")


@goals.command(name="view")
@click.argument("goal_id")
@command
def goals_view(out: Out, goal_id: str) -> None:
    """Show a goal."""
    row = client().goals.get(goal_id)
    out.detail(row, [("ID", "id"), ("Title", "title"), ("Description", "description"), ("Status", "status"),
                     ("Metric", "metric"), ("Progress", _progress), ("Project", "projectId"),
                     ("Created", "createdAt"), ("Updated", "updatedAt")])


def _goal_options(fn: Any) -> Any:
    for opt in reversed([
        click.option("--description", "-d"), click.option("--metric"), click.option("--target", type=float),
        click.option("--current", type=float), click.option("--unit"),
        click.option("--status", type=click.Choice(GOAL_STATUSES)), click.option("--project", "-p"),
    ]):
        fn = opt(fn)
    return fn


@goals.command(name="create")
@click.argument("title")
@_goal_options
@command
def goals_create(out: Out, title: str, description: str | None, metric: str | None, target: float | None,
                 current: float | None, unit: str | None, status: str | None, project: str | None) -> None:
    """Create a goal."""
    row = client().goals.create(title, description=description, metric=metric, target_value=target,
                                current_value=current, unit=unit, status=status, project_id=project)
    out.done(f"Created goal {row['title']} ({row['id']})", row)


@goals.command(name="update")
@click.argument("goal_id")
@click.option("--title")
@_goal_options
@command
def goals_update(out: Out, goal_id: str, title: str | None, description: str | None, metric: str | None,
                 target: float | None, current: float | None, unit: str | None, status: str | None,
                 project: str | None) -> None:
    """Change a goal (e.g. --current 7 to record progress)."""
    row = client().goals.update(goal_id, **_changes(
        title=title, description=description, metric=metric, target_value=target, current_value=current,
        unit=unit, status=status, project_id=project))
    out.done(f"Updated goal {row['title']}", row)


@goals.command(name="delete")
@click.argument("goal_id")
@click.option("--yes", "-y", is_flag=True)
@command
def goals_delete(out: Out, goal_id: str, yes: bool) -> None:
    """Soft-delete a goal."""
    confirm_delete(yes, f"goal {goal_id}")
    client().goals.delete(goal_id)
    out.done(f"Deleted goal {goal_id}", {"deleted": goal_id})


READING_COLUMNS: list[Column] = [("At", "at"), ("Value", lambda r: f"{r['value']:g}"), ("Source", "source")]


@goals.command(name="readings")
@click.argument("goal_id")
@_paging
@command
def goals_readings(out: Out, goal_id: str, limit: int, offset: int, all_: bool) -> None:
    """List a goal's readings, newest first (the server keeps the last 1,000)."""
    goals_api = client().goals
    if all_:
        rows = list(goals_api.iter_readings(goal_id, page_size=200))
        out.table(rows, READING_COLUMNS, total=len(rows), empty="No readings.")
    else:
        page = goals_api.readings(goal_id, limit, offset)
        out.table(page.data, READING_COLUMNS, total=page.total, empty="No readings.")


@goals.command(name="record")
@click.argument("goal_id")
@click.argument("value", type=float)
@click.option("--at", help="When it was measured (ISO-8601; default now).")
@click.option("--source", help="Where the reading comes from, e.g. ci, posthog.")
@command
def goals_record(out: Out, goal_id: str, value: float, at: str | None, source: str | None) -> None:
    """Record a reading (a negative VALUE goes after --: loop goals record G -- -3)."""
    row = client().goals.record(goal_id, value, at=at, source=source)
    out.done(f"Recorded {value:g} on goal {row['title']}: {_progress(row) or row.get('currentValue')} "
             f"({row['status']})", row)


# -------------------------------------------------------------------- labels
@click.group()
def labels() -> None:
    """Labels tag issues (templates can match on label names)."""


@labels.command(name="list")
@_paging
@command
def labels_list(out: Out, limit: int, offset: int, all_: bool) -> None:
    """List labels."""
    _listing(out, client().labels, LABEL_COLUMNS, limit, offset, all_, "No labels.")


@labels.command(name="create")
@click.argument("name")
@click.option("--color", "--colour", "color", default="#6b7280", show_default=True)
@command
def labels_create(out: Out, name: str, color: str) -> None:
    """Create a label."""
    row = client().labels.create(name, color)
    out.done(f"Created label {row['name']} ({row['id']})", row)


@labels.command(name="delete")
@click.argument("label")
@click.option("--yes", "-y", is_flag=True)
@command
def labels_delete(out: Out, label: str, yes: bool) -> None:
    """Delete a label (by id or name)."""
    loop = client()
    found = loop.labels.find(label)
    label_id = found["id"] if found else label
    confirm_delete(yes, f"label {label}")
    loop.labels.delete(label_id)
    out.done(f"Deleted label {label}", {"deleted": label_id})


def register(main: click.Group) -> None:
    main.add_command(projects)
    main.add_command(goals)
    main.add_command(labels)
