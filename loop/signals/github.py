"""GitHub webhook payload -> signal (contract 4.2, plus what real events carry).

Contract fields are kept exactly: type = event name, sourceId = ``<event>.<action>`` (or the
event), title ``GitHub: <event> on <repo> by <actor>``, severity from the event table.
Beyond the reference:

- events the reference rates ``medium`` by default are rated from their content: a failed
  ``workflow_run`` or ``deployment_status`` is ``high``, a failed ``check_run``/``check_suite``/
  ``workflow_job`` ``medium``; ``secret_scanning_alert`` is ``critical`` and
  ``repository_vulnerability_alert`` ``high``;
- CI/deployment events that report no failure (queued, in progress, success...) create nothing:
  GitHub sends them for every run, and an agent has nothing to do about a green build;
- the issue description summarizes the event (title, link, branch, commits, alert...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loop.signals.common import Normalized, bullets, clip_fingerprint, dig, excerpt, text

#: Severity by event (contract 4.2); anything else is ``medium`` unless rated below.
SEVERITY = {
    "security_advisory": "critical", "code_scanning_alert": "critical", "dependabot_alert": "high",
    "issues": "medium", "pull_request": "low", "push": "low", "issue_comment": "low",
    "secret_scanning_alert": "critical", "repository_vulnerability_alert": "high",
}
FAILED = frozenset(("failure", "timed_out", "startup_failure"))
#: CI-like events: (object key, severity when failed). They are dropped unless failed.
CI_EVENTS = {"workflow_run": ("workflow_run", "high"), "workflow_job": ("workflow_job", "medium"),
             "check_run": ("check_run", "medium"), "check_suite": ("check_suite", "medium")}


def ci_failed(event: str, payload: Mapping[str, Any]) -> bool | None:
    """For CI/deployment events, whether this delivery reports a failure; ``None`` otherwise."""
    if event in CI_EVENTS:
        obj = dig(payload, CI_EVENTS[event][0])
        return dig(obj, "status") == "completed" and dig(obj, "conclusion") in FAILED
    if event == "deployment_status":
        return dig(payload, "deployment_status", "state") in ("failure", "error")
    return None


def normalize(event: str, payload: Mapping[str, Any]) -> Normalized | None:
    """The signal of one delivery, or ``None`` for events that carry no work (green CI, ping)."""
    if event == "ping":
        return None
    failed = ci_failed(event, payload)
    if failed is False:
        return None
    if event in CI_EVENTS:
        severity = CI_EVENTS[event][1]
    elif event == "deployment_status":
        severity = "high"
    else:
        severity = SEVERITY.get(event, "medium")
    repo = text(dig(payload, "repository", "full_name")) or "unknown"
    actor = text(dig(payload, "sender", "login")) or "unknown"
    action = payload.get("action")
    return Normalized(
        source="github",
        type=event,
        severity=severity,
        title=f"GitHub: {event} on {repo} by {actor}",
        source_id=f"{event}.{action}" if action else event,
        description=describe(event, payload),
        fingerprint=fingerprint(event, repo, payload),
    )


ALERTS = ("dependabot_alert", "code_scanning_alert", "secret_scanning_alert", "repository_vulnerability_alert")


def fingerprint(event: str, repo: str, p: Mapping[str, Any]) -> str | None:
    """Failed CI: repository + workflow/check name + branch (a flaky workflow failing on every push
    is one issue); security alerts: repository + alert number; other events do not group."""
    if event in CI_EVENTS:
        obj = dig(p, CI_EVENTS[event][0])
        name = (text(dig(obj, "name")) or text(dig(obj, "workflow_name")) or text(dig(p, "workflow", "name"))
                or text(dig(obj, "app", "slug")) or "?")
        branch = text(dig(obj, "head_branch")) or text(dig(obj, "check_suite", "head_branch")) or "?"
        return clip_fingerprint(f"github:{repo}:{event}:{name}@{branch}")
    if event == "deployment_status":
        env = (text(dig(p, "deployment_status", "environment")) or text(dig(p, "deployment", "environment"))
               or "?")
        return clip_fingerprint(f"github:{repo}:deployment:{env}")
    if event in ALERTS:
        number = dig(p, "alert", "number")
        if isinstance(number, int) and not isinstance(number, bool):
            return clip_fingerprint(f"github:{repo}:{event}:{number}")
    return None


def describe(event: str, p: Mapping[str, Any]) -> str | None:
    """A short Markdown summary of the event for the triage issue."""
    action = text(p.get("action"))
    lines: list[tuple[str, Any]] = [("Event", f"{event}.{action}" if action else event),
                                    ("Repository", text(dig(p, "repository", "html_url")))]
    body: str | None = None
    if event in ("issues", "issue_comment"):
        lines += [("Issue", _ref(dig(p, "issue", "number"), dig(p, "issue", "title"))),
                  ("Link", text(dig(p, "comment", "html_url")) or text(dig(p, "issue", "html_url")))]
        body = excerpt(dig(p, "comment", "body")) or excerpt(dig(p, "issue", "body"))
    elif event in ("pull_request", "pull_request_review", "pull_request_review_comment"):
        pr = dig(p, "pull_request")
        lines += [("Pull request", _ref(dig(pr, "number"), dig(pr, "title"))),
                  ("Link", text(dig(pr, "html_url"))),
                  ("Branch", _branches(dig(pr, "head", "ref"), dig(pr, "base", "ref"))),
                  ("Merged", True if dig(pr, "merged") is True else None)]
        body = excerpt(dig(p, "review", "body")) or excerpt(dig(p, "comment", "body")) or excerpt(dig(pr, "body"))
    elif event == "push":
        raw_commits = p.get("commits")
        commits: list[Any] = raw_commits if isinstance(raw_commits, list) else []
        lines += [("Ref", text(p.get("ref"))), ("Compare", text(p.get("compare"))),
                  ("Forced", True if p.get("forced") is True else None)]
        body = "\n".join(_commit(c) for c in commits[:20] if isinstance(c, Mapping)) or None
    elif event in CI_EVENTS:
        obj = dig(p, CI_EVENTS[event][0])
        lines += [("Name", text(dig(obj, "name")) or text(dig(obj, "workflow_name")) or text(dig(p, "workflow", "name"))),
                  ("Conclusion", text(dig(obj, "conclusion"))),
                  ("Branch", text(dig(obj, "head_branch")) or text(dig(obj, "check_suite", "head_branch"))),
                  ("Commit", text(dig(obj, "head_sha"))),
                  ("Link", text(dig(obj, "html_url")) or text(dig(obj, "details_url")))]
        body = excerpt(dig(obj, "output", "summary"))
    elif event == "deployment_status":
        lines += [("State", text(dig(p, "deployment_status", "state"))),
                  ("Environment", text(dig(p, "deployment_status", "environment")) or text(dig(p, "deployment", "environment"))),
                  ("Ref", text(dig(p, "deployment", "ref"))),
                  ("Link", text(dig(p, "deployment_status", "log_url")) or text(dig(p, "deployment_status", "target_url")))]
        body = excerpt(dig(p, "deployment_status", "description"))
    elif event in ("dependabot_alert", "code_scanning_alert", "secret_scanning_alert", "repository_vulnerability_alert"):
        alert = dig(p, "alert")
        lines += [("Summary", text(dig(alert, "security_advisory", "summary")) or text(dig(alert, "rule", "description"))
                   or text(dig(alert, "secret_type_display_name")) or text(dig(alert, "affected_package_name"))),
                  ("Advisory severity", text(dig(alert, "security_advisory", "severity"))
                   or text(dig(alert, "rule", "security_severity_level")) or text(dig(alert, "rule", "severity"))
                   or text(dig(alert, "severity"))),
                  ("Package", text(dig(alert, "dependency", "package", "name"))),
                  ("Manifest", text(dig(alert, "dependency", "manifest_path"))),
                  ("Identifier", text(dig(alert, "security_advisory", "ghsa_id")) or text(dig(alert, "external_identifier"))),
                  ("Link", text(dig(alert, "html_url")) or text(dig(alert, "external_reference")))]
    elif event == "security_advisory":
        adv = dig(p, "security_advisory")
        lines += [("Summary", text(dig(adv, "summary"))), ("Advisory severity", text(dig(adv, "severity"))),
                  ("Identifier", text(dig(adv, "ghsa_id")) or text(dig(adv, "cve_id"))),
                  ("Link", text(dig(adv, "html_url")))]
        body = excerpt(dig(adv, "description"))
    summary = bullets(lines)
    return "\n\n".join(part for part in (summary, body) if part) or None


def _ref(number: Any, title: Any) -> str | None:
    t = text(title)
    if isinstance(number, int) and not isinstance(number, bool):
        return f"#{number} {t}" if t else f"#{number}"
    return t


def _branches(head: Any, base: Any) -> str | None:
    h, b = text(head), text(base)
    return f"{h} -> {b}" if h and b else h or b


def _commit(c: Mapping[str, Any]) -> str:
    sha = (text(c.get("id")) or "")[:7]
    message = (text(c.get("message")) or "").splitlines()[0:1]
    return f"- `{sha}` {message[0] if message else ''}".rstrip()
