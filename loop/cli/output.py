"""Rendering for the CLI in three modes: ``table`` (rich, for people), ``plain`` (tab-separated,
no colour, for ``grep``/``cut``) and ``json`` (the API's data, for scripts)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

Column = tuple[str, str | Callable[[dict[str, Any]], Any]]
PRIORITY = {0: "none", 1: "urgent", 2: "high", 3: "medium", 4: "low"}
STATUS_STYLE = {"todo": "cyan", "in_progress": "yellow", "done": "green", "canceled": "dim", "triage": "magenta",
                "backlog": "blue", "active": "green", "failed": "red", "expired": "red", "released": "yellow",
                "completed": "green"}


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def get(row: dict[str, Any], key: str | Callable[[dict[str, Any]], Any]) -> Any:
    if callable(key):
        return key(row)
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def priority(row: dict[str, Any]) -> str:
    p = row.get("priority")
    return f"{p} {PRIORITY.get(p, '?')}" if isinstance(p, int) else "-"


class Out:
    def __init__(self, mode: str = "table") -> None:
        self.mode = mode
        interactive = sys.stdout.isatty()
        self.console = Console(highlight=False, soft_wrap=False, width=None if interactive else 200,
                               no_color=not interactive)

    @property
    def is_json(self) -> bool:
        return self.mode == "json"

    def json(self, obj: Any) -> None:
        click.echo(json.dumps(obj, indent=2, ensure_ascii=False))

    def line(self, text: str = "") -> None:
        click.echo(text)

    def text(self, text: str) -> None:
        """Verbatim text (prompts, files): never styled."""
        click.echo(text)

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[Column], *, total: int | None = None,
              raw: Any = None, title: str | None = None, empty: str = "Nothing here.") -> None:
        if self.is_json:
            self.json(raw if raw is not None else {"data": list(rows), **({"total": total} if total is not None
                                                                          else {})})
            return
        if self.mode == "plain":
            for row in rows:
                click.echo("\t".join(cell(get(row, key)) for _, key in columns))
            return
        if not rows:
            self.console.print(f"[dim]{escape(empty)}[/dim]")
            return
        table = Table(title=title, show_lines=False, header_style="bold")
        for header, _ in columns:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(self._styled(header, get(row, key)) for header, key in columns))
        self.console.print(table)
        if total is not None and total > len(rows):
            self.console.print(f"[dim]{len(rows)} of {total} shown (use --limit/--offset or --all)[/dim]")

    def _styled(self, header: str, value: Any) -> str:
        text = escape(cell(value))
        style = STATUS_STYLE.get(str(value)) if header.lower() in ("status", "state") else None
        return f"[{style}]{text}[/{style}]" if style else text

    def detail(self, obj: dict[str, Any], fields: Iterable[Column], *, raw: Any = None,
               title: str | None = None) -> None:
        if self.is_json:
            self.json(raw if raw is not None else obj)
            return
        pairs = [(label, get(obj, key)) for label, key in fields]
        if self.mode == "plain":
            for label, value in pairs:
                click.echo(f"{label}\t{cell(value)}")
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        for label, value in pairs:
            grid.add_row(escape(label), self._styled(label, value))
        if title:
            self.console.print(f"[bold]{escape(title)}[/bold]")
        self.console.print(grid)

    def section(self, title: str) -> None:
        if self.mode == "table":
            self.console.print(f"\n[bold underline]{escape(title)}[/bold underline]")
        elif self.mode == "plain":
            click.echo(f"# {title}")

    def done(self, message: str, data: Any = None) -> None:
        """Report a completed action: the message for people, ``data`` for --json."""
        if self.is_json:
            self.json(data if data is not None else {"ok": True, "message": message})
        elif self.mode == "plain":
            click.echo(message)
        else:
            self.console.print(f"[green]✓[/green] {escape(message)}")
