"""``loop demo``: the whole cycle (docs/loop.md) against a running Loop, in compressed time.

Seeds a project of its own and plays every agent itself, printing each step: a PostHog-style
metric drop -> triage -> hypothesis -> two tasks in blocking order -> a monitor scheduled a few
seconds ahead (standing for 48 hours; it is not dispatched early) -> ``invalidated`` -> the signal
Loop files itself -> a second hypothesis -> its monitor -> ``validated``. Claims are limited to the
demo's project, so it never takes other work.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import click

from loop.cli.common import client, command
from loop.cli.output import Out
from loop.client import LoopClient
from loop.clock import iso

Echo = Callable[[str], None]


class Demo:
    def __init__(self, loop: LoopClient, echo: Echo, check_after: float, timeout: float = 60.0) -> None:
        self.loop, self.echo, self.check_after, self.timeout = loop, echo, check_after, timeout
        self.project_id = ""

    def claim(self, expect: str) -> tuple[dict[str, Any], str]:
        task = self.loop.dispatch.next(self.project_id)
        if task is None or task["issue"]["type"] != expect:
            raise click.ClickException(f"expected a {expect} to be dispatched, got {task and task['issue']}")
        issue = task["issue"]
        self.echo(f"  claimed #{issue['number']} [{issue['type']}] {issue['title']}")
        return issue, task["claim"]["token"]

    def create(self, title: str, type_: str, **fields: Any) -> dict[str, Any]:
        row = self.loop.issues.create(title, type_, project_id=self.project_id, **fields)
        self.echo(f"  created #{row['number']} [{type_}] {title}"
                  + (f" (not before {row['notBefore']})" if row.get("notBefore") else ""))
        return row

    def hypothesis(self, triage: dict[str, Any], token: str, title: str) -> dict[str, Any]:
        hyp = self.create(title, "hypothesis", status="todo", parent_id=triage["id"], hypothesis={
            "statement": title, "confidence": 0.6, "evidence": ["the drop started with the last release"],
            "validationCriteria": "signup conversion back above 3% within 48 hours"})
        self.loop.issues.complete(triage["id"], f"Filed hypothesis #{hyp['number']}", claim_token=token)
        return hyp

    def plan(self) -> dict[str, Any]:
        hyp, token = self.claim("hypothesis")
        parent = self.loop.issues.get(hyp["id"])["parentId"]
        first = self.create("Measure the current baseline", "task", status="backlog", parent_id=parent)
        second = self.create("Ship the fix and compare", "task", status="backlog", parent_id=parent)
        self.loop.relations.create(second["id"], "blocked_by", first["id"])
        for t in (first, second):
            self.loop.issues.update(t["id"], status="todo")
        self.echo(f"  #{second['number']} is blocked by #{first['number']}")
        now_ms = time.time_ns() // 1_000_000
        monitor = self.create("Check whether conversion recovered", "monitor", status="todo", parent_id=parent,
                              not_before=iso(now_ms + int(self.check_after * 1000)))
        self.loop.relations.create(monitor["id"], "related", hyp["id"])
        self.loop.issues.complete(hyp["id"], "Planned: baseline, fix, then the monitor", claim_token=token)
        for _ in range(2):
            task, token = self.claim("task")
            self.loop.issues.complete(task["id"], "done", claim_token=token)
            self.echo(f"  #{task['number']} done")
        return monitor

    def verify(self, monitor: dict[str, Any], outcome: str) -> None:
        if self.loop.dispatch.next(self.project_id) is None:
            self.echo(f"  nothing to do: #{monitor['number']} waits for {monitor['notBefore']}")
        deadline = time.monotonic() + self.timeout
        while True:
            task = self.loop.dispatch.next(self.project_id)
            if task is not None:
                break
            if time.monotonic() > deadline:
                raise click.ClickException("the monitor was never dispatched (is a worker running?)")
            time.sleep(0.2)
        issue, token = task["issue"], task["claim"]["token"]
        self.echo(f"  claimed #{issue['number']} [{issue['type']}] {issue['title']} (its time came)")
        self.loop.issues.update(issue["id"], claim_token=token, status="done", outcome=outcome,
                                agent_summary=f"conversion measured: {outcome}")
        self.echo(f"  #{issue['number']} done, outcome {outcome}")

    def run(self) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:6]
        self.echo("1. observe: a PostHog-style metric drop arrives")
        self.project_id = self.loop.projects.create(f"Loop demo {tag}")["id"]
        first = self.loop.signals.ingest("posthog", "metric_change", "high", {
            "message": "signup conversion -35% (24h)", "metric": "signup_conversion", "change": -35},
            project_id=self.project_id)
        self.echo(f"  signal -> triage issue #{first['issue']['number']}")
        self.echo("2. hypothesize: the triage agent files a hypothesis")
        triage, token = self.claim("signal")
        self.hypothesis(triage, token, "The new signup form rejects valid emails")
        self.echo("3. plan and execute: tasks in blocking order, a monitor scheduled ahead")
        monitor1 = self.plan()
        self.echo(f"4. verify: the monitor runs after {self.check_after:g}s (standing for 48 hours)")
        self.verify(monitor1, "invalidated")
        loop_signal = self.loop.signals.list(source="loop", project_id=self.project_id).data[0]
        self.echo(f"5. the outcome comes back: Loop filed signal {loop_signal['type']} "
                  f"(triage issue linked to the monitor)")
        triage2, token = self.claim("signal")
        self.hypothesis(triage2, token, "Emails with a plus sign are rejected")
        monitor2 = self.plan()
        self.verify(monitor2, "validated")
        self.echo("6. validated: the chain is closed, no new signal")
        return {"projectId": self.project_id, "firstSignalId": first["signal"]["id"],
                "loopSignalId": loop_signal["id"], "monitors": [monitor1["id"], monitor2["id"]]}


@click.command()
@click.option("--check-after", type=click.FloatRange(0.5, 600), default=3.0, show_default=True,
              help="Seconds a monitor waits (standing for the 48 hours of a real check).")
@command
def demo(out: Out, check_after: float) -> None:
    """Run the whole cycle (signal -> ... -> verified outcome) against the Loop you are logged in to."""
    result = Demo(client(), out.line if not out.is_json else (lambda _t: None), check_after).run()
    out.done(f"Demo finished in project {result['projectId']}", result)


def register(main: click.Group) -> None:
    main.add_command(demo)
