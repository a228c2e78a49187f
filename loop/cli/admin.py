"""``loop status``, ``loop dashboard``, ``loop keys``, ``loop admin`` and ``loop completions``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import get_completion_class

from loop.cli.common import CliError, client, command, describe, mask, resolve
from loop.cli.output import Column, Out
from loop.client import LoopClientError
from loop.errors import ConfigError

if TYPE_CHECKING:
    from loop.runtime import Loop

KEY_COLUMNS: list[Column] = [("Name", "name"), ("Prefix", "prefix"), ("Created", "createdAt"), ("ID", "id")]


@click.command()
@command
def status(out: Out) -> None:
    """Is the server up, is the key accepted, and how is the queue?"""
    loop = client(max_retries=0, timeout=10)
    url, _ = resolve("url")
    key, _ = resolve("api_key")
    info: dict[str, Any] = {"url": url, "key": mask(key)}
    ok = True
    try:
        health = loop.health()
        info["server"] = f"up ({loop.info().get('version')})" if health.get("ok") else "unhealthy"
    except LoopClientError as exc:
        info["server"] = f"down: {describe(exc)}"
        ok = False
    if ok:
        try:
            info["issues"] = loop.issues.list(1, 0).total
            info["authenticated"] = True
            info["triage"] = loop.issues.list(1, 0, status="triage").total
            info["stats"] = loop.dashboard.stats()
        except LoopClientError as exc:
            if "issues" not in info:
                info["authenticated"] = False
                ok = False
            info["error"] = describe(exc)
    d: dict[str, Any] = (info.get("stats") or {}).get("dispatch") or {}
    out.detail(info, [("Server", "url"), ("Status", "server"), ("API key", "key"),
                      ("Authenticated", "authenticated"), ("Error", "error"),
                      ("Issues", "issues"), ("In triage", "triage"),
                      ("Queue depth (todo + backlog)", lambda _: d.get("queueDepth")), ("In progress", lambda _: d.get("activeCount")),
                      ("Done in 24h", lambda _: d.get("completedLast24h"))])
    if not ok:
        raise SystemExit(1)


@click.group(invoke_without_command=True)
@click.pass_context
@command
def dashboard(out: Out, ctx: click.Context) -> None:
    """Counts by status and type, goals and dispatch (subcommands: activity, prompts)."""
    if ctx.invoked_subcommand is not None:
        return
    stats = client().dashboard.stats()
    if out.is_json:
        out.json(stats)
        return
    issues, goals, d = stats.get("issues") or {}, stats.get("goals") or {}, stats.get("dispatch") or {}
    flat = {
        "Issues": issues.get("total"),
        **{f"  {k}": v for k, v in sorted((issues.get("byStatus") or {}).items())},
        "Goals": f"{goals.get('total')} ({goals.get('active')} active, {goals.get('achieved')} achieved)",
        "Queue depth (todo + backlog)": d.get("queueDepth"), "In progress": d.get("activeCount"),
        "Done in 24h": d.get("completedLast24h"),
    }
    out.detail(flat, [(k, k) for k in flat], raw=stats)


@dashboard.command(name="activity")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@command
def activity(out: Out, limit: int) -> None:
    """Recent work: root issues with their children, latest first."""
    page = client().dashboard.activity(limit)
    rows = [{"root": c["root"], "children": len(c.get("children") or []), "latest": c.get("latestActivity")}
            for c in page.data]
    out.table(rows, [("#", "root.number"), ("Status", "root.status"), ("Title", "root.title"),
                     ("Children", "children"), ("Latest activity", "latest")],
              raw={"data": page.data, "total": page.total}, empty="No activity.")


@dashboard.command(name="prompts")
@command
def prompts_health(out: Out) -> None:
    """Prompt template health: reviews, scores and what needs attention."""
    rows = client().dashboard.prompts()
    out.table(rows, [("Template", "template.slug"), ("Active", "activeVersion.version"),
                     ("Reviews", "reviewSummary.totalReviews"), ("Score", "reviewSummary.compositeScore"),
                     ("Completion", "activeVersion.completionRate"), ("Needs attention", "needsAttention")],
              raw={"data": rows}, empty="No templates.")


@click.group()
def keys() -> None:
    """Named API keys, one per agent or integration (needs the bootstrap key)."""


@keys.command(name="list")
@command
def keys_list(out: Out) -> None:
    """List named keys (never their secrets)."""
    rows = client().keys.list()
    out.table(rows, KEY_COLUMNS, total=len(rows), empty="No named keys.")


@keys.command(name="create")
@click.argument("name")
@command
def keys_create(out: Out, name: str) -> None:
    """Create a key; its secret is printed once."""
    row = client().keys.create(name)
    if out.is_json:
        out.json(row)
    elif out.mode == "plain":
        out.line(row["key"])
    else:
        out.done(f"Created key {row['name']} ({row['id']}). Copy it now; it is not shown again:")
        out.text(row["key"])


@keys.command(name="revoke")
@click.argument("key")
@command
def keys_revoke(out: Out, key: str) -> None:
    """Revoke a key by id or name."""
    client().keys.revoke(key)
    out.done(f"Revoked key {key}", {"revoked": key})


@click.group()
def admin() -> None:
    """Operator tools that talk to Redis directly (REDIS_URL, LOOP_NAMESPACE), not to the API.

    They scan the whole namespace, which no API request may do (docs/operations.md).
    """


def _store() -> Loop:
    from loop.runtime import from_settings
    from loop.settings import Settings

    # The bootstrap key is irrelevant here; every other variable is validated as at start.
    env = {**os.environ, "LOOP_API_KEY": os.environ.get("LOOP_API_KEY") or "-"}
    try:
        return from_settings(Settings.from_env(env))
    except ConfigError as exc:
        raise CliError(str(exc)) from None


@admin.command(name="check")
@command
def admin_check(out: Out) -> None:
    """Audit every derived index against the rows; exit status 1 on drift."""
    from loop.store.reindex import check

    problems = check(_store())
    if out.is_json:
        out.json({"ok": not problems, "problems": problems})
    elif not problems:
        out.done("Every derived index matches the rows.")
    else:
        for problem in problems:
            out.line(problem)
        out.line(f"{len(problems)} problem(s); `loop admin repair` rebuilds the derived indexes.")
    if problems:
        raise SystemExit(1)


@admin.command(name="repair")
@command
def admin_repair(out: Out) -> None:
    """Rebuild every drifted derived index from the rows (ready sets, blocked counts, zsets,
    counts, bitmaps...), then check again; exit status 1 if drift remains."""
    from loop.store.reindex import check, repair

    store = _store()
    fixed = repair(store)
    left = check(store)
    if out.is_json:
        out.json({"repaired": fixed, "remaining": left})
    else:
        for problem in fixed:
            out.line(f"repaired: {problem}")
        for problem in left:
            out.line(f"remaining: {problem}")
        out.done(f"Repaired {len(fixed)} derived key(s); {len(left)} problem(s) remain.")
    if left:
        raise SystemExit(1)


@admin.command(name="export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@command
def admin_export(out: Out, path: str) -> None:
    """Write every key of LOOP_NAMESPACE to PATH (`-`: stdout) as JSON lines of DUMPs, to move the
    namespace to another deployment with `loop admin import` (docs/operations.md, "Topologies")."""
    from loop.store.transfer import export_lines

    store = _store()
    n = -1
    with click.open_file(path, "wb") as f:
        for line in export_lines(store):
            f.write(line + b"\n")
            n += 1
    if path != "-":
        out.done(f"Exported {n} key(s) of namespace {store.keys.namespace} to {path}.")


@admin.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@command
def admin_import(out: Out, path: str) -> None:
    """RESTORE an export (PATH, `-`: stdin) into LOOP_NAMESPACE, which must hold no key yet."""
    from loop.errors import LoopError
    from loop.store.transfer import import_lines

    store = _store()
    with click.open_file(path, "rb") as f:
        try:
            n = import_lines(store, f)
        except LoopError as exc:
            raise CliError(str(exc)) from None
    out.done(f"Imported {n} key(s) into namespace {store.keys.namespace}.")


@click.command()
@click.argument("shell", required=False, type=click.Choice(("bash", "zsh", "fish")))
@click.pass_context
def completions(ctx: click.Context, shell: str | None) -> None:
    """Print the shell completion script, e.g. `eval "$(loop completions bash)"`."""
    shell = shell or os.path.basename(os.environ.get("SHELL", "bash"))
    cls = get_completion_class(shell)
    if cls is None:
        raise CliError(f"no completion for shell {shell!r}; use bash, zsh or fish")
    root = ctx.find_root()
    assert root.command is not None
    click.echo(cls(root.command, {}, "loop", "_LOOP_COMPLETE").source())


def register(main: click.Group) -> None:
    main.add_command(status)
    main.add_command(dashboard)
    main.add_command(keys)
    main.add_command(admin)
    main.add_command(completions)
