"""Provider payload -> signal mapping (contract 4.2-4.4 and the real provider shapes). Pure logic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loop.signals import github, posthog, sentry
from loop.signals.common import js_number
from loop.store.signals import title_for
from tests.fixtures.webhooks import fixture_bytes


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_bytes(name))
    return data


# ------------------------------------------------------------------ GitHub
@pytest.mark.parametrize("fixture, event, severity, source_id", [
    ("issues.opened", "issues", "medium", "issues.opened"),
    ("issue_comment.created", "issue_comment", "low", "issue_comment.created"),
    ("pull_request.opened", "pull_request", "low", "pull_request.opened"),
    ("push", "push", "low", "push"),
    ("dependabot_alert.created", "dependabot_alert", "high", "dependabot_alert.created"),
    ("code_scanning_alert.created", "code_scanning_alert", "critical", "code_scanning_alert.created"),
    ("security_advisory.published", "security_advisory", "critical", "security_advisory.published"),
    ("check_run.completed", "check_run", "medium", "check_run.completed"),
    ("workflow_job.completed", "workflow_job", "medium", "workflow_job.completed"),
])
def test_real_github_events_map_to_the_contract_type_source_id_and_severity(fixture, event, severity, source_id):
    payload = load(f"github/{fixture}.json")
    n = github.normalize(event, payload)
    assert n is not None
    assert (n.source, n.type, n.severity, n.source_id) == ("github", event, severity, source_id)
    repo = (payload.get("repository") or {}).get("full_name", "unknown")
    actor = (payload.get("sender") or {}).get("login", "unknown")
    assert n.title == f"GitHub: {event} on {repo} by {actor}"


def test_a_github_issue_event_describes_the_issue_title_link_and_body():
    n = github.normalize("issues", load("github/issues.opened.json"))
    assert n is not None and n.description is not None
    assert "#1 Spelling error in the README file" in n.description
    assert "https://github.com/Codertocat/Hello-World/issues/1" in n.description
    assert "accidently spelled 'commit'" in n.description


def test_a_push_lists_its_commits_in_the_description():
    n = github.normalize("push", load("github/push.json"))
    assert n is not None and n.description is not None
    assert "refs/heads/master" in n.description and "Initial commit" in n.description


def test_a_security_advisory_without_repository_or_sender_says_unknown():
    n = github.normalize("security_advisory", load("github/security_advisory.published.json"))
    assert n is not None
    assert n.title == "GitHub: security_advisory on unknown by unknown"
    assert "GHSA-rf4j-j272-fj86" in (n.description or "")


def test_green_ci_runs_and_successful_deployments_create_no_signal():
    assert github.normalize("workflow_run", load("github/workflow_run.completed.json")) is None
    assert github.normalize("deployment_status", load("github/deployment_status.created.json")) is None


def test_a_failed_workflow_run_or_deployment_is_a_high_severity_signal():
    run = load("github/workflow_run.completed.json")
    run["workflow_run"]["conclusion"] = "failure"
    n = github.normalize("workflow_run", run)
    assert n is not None and n.severity == "high" and n.source_id == "workflow_run.completed"
    assert "failure" in (n.description or "") and "actions/runs/289782451" in (n.description or "")
    dep = load("github/deployment_status.created.json")
    dep["deployment_status"]["state"] = "failure"
    n = github.normalize("deployment_status", dep)
    assert n is not None and n.severity == "high"


def test_unknown_github_events_are_medium_and_a_ping_is_nothing():
    assert github.normalize("ping", load("github/ping.json")) is None
    n = github.normalize("star", {"action": "created", "repository": {"full_name": "o/r"}, "sender": {"login": "u"}})
    assert n is not None and (n.severity, n.source_id, n.title) == ("medium", "star.created", "GitHub: star on o/r by u")


def test_github_mapping_never_fails_on_odd_shapes():
    for payload in ({}, {"repository": "x", "sender": 3, "action": ""}, {"issue": [], "commits": "no"}):
        for event in ("issues", "push", "pull_request", "workflow_run", "dependabot_alert", "deployment_status"):
            github.normalize(event, payload)  # must not raise
    n = github.normalize("issues", {"action": ""})
    assert n is not None and n.source_id == "issues"


# ------------------------------------------------------------------ Sentry
def test_a_sentry_issue_maps_exactly_as_the_reference():
    n = sentry.normalize("issue", load("sentry/issue.created.json"))
    assert n.title == "Sentry: TypeError: Cannot read properties of undefined (reading 'id') (1 events)"
    assert (n.type, n.severity, n.source_id) == ("created", "high", "1170820242")


@pytest.mark.parametrize("level, count, severity", [
    ("fatal", "1", "critical"), ("error", "100", "critical"), ("error", "99", "high"),
    ("warning", "500", "medium"), ("info", "1", "low"), ("debug", "1", "low"),
])
def test_sentry_severity_comes_from_level_and_count(level, count, severity):
    n = sentry.normalize("issue", {"action": "created", "data": {"issue": {"id": 7, "level": level, "count": count}}})
    assert n.severity == severity and n.source_id == "7"
    assert n.title == f"Sentry: Unknown error ({count} events)"


def test_sentry_reference_fallbacks_use_the_error_and_the_event_field():
    n = sentry.normalize("error", load("sentry/error.created.json"))
    assert n.title == "Sentry: ConnectionError: database is unreachable (1 events)"
    assert (n.severity, n.type, n.source_id) == ("critical", "created", None)
    n = sentry.normalize("unknown", {"event": "thing"})
    assert (n.title, n.type, n.severity) == ("Sentry: Unknown error (1 events)", "thing", "high")


def test_a_sentry_event_alert_is_titled_from_its_event_and_names_the_rule():
    n = sentry.normalize("event_alert", load("sentry/event_alert.triggered.json"))
    assert n.title == "Sentry: ZeroDivisionError: division by zero (1 events)"
    assert (n.type, n.severity, n.source_id) == ("triggered", "high", "1170820242")
    assert "Notify on new production errors" in (n.description or "")


def test_a_sentry_metric_alert_takes_its_severity_from_the_action():
    payload = load("sentry/metric_alert.critical.json")
    n = sentry.normalize("metric_alert", payload)
    assert (n.title, n.severity, n.source_id) == ("Sentry: Critical: Too many errors (critical)", "critical", "4921")
    payload["action"] = "resolved"
    assert sentry.normalize("metric_alert", payload).severity == "low"


def test_sentry_delivery_identity_is_the_resource_identity():
    issue = load("sentry/issue.created.json")
    assert sentry.identity("issue", issue, b"x") == "issue:1170820242:created:2026-02-20T11:58:43.000000Z"
    alert = load("sentry/event_alert.triggered.json")
    assert sentry.identity("event_alert", alert, b"x") == (
        "event_alert:e4874d664c3540c1a32eab185f12c5ab:Notify on new production errors")
    metric = load("sentry/metric_alert.critical.json")
    assert sentry.identity("metric_alert", metric, b"x") == "metric_alert:4921:critical"
    assert sentry.identity("error", load("sentry/error.created.json"), b"x") == (
        "error:a8c3bd3d5a1b4d5e9d8b6c1f8f0e2a11")
    assert sentry.identity("installation", {"action": "created"}, b"body").startswith("installation:sha256:")


def test_the_sentry_resource_is_guessed_from_the_body_without_the_header():
    assert sentry.resource_of(None, load("sentry/metric_alert.critical.json")) == "metric_alert"
    assert sentry.resource_of(None, load("sentry/event_alert.triggered.json")) == "event_alert"
    assert sentry.resource_of("Issue", {}) == "issue"


# ------------------------------------------------------------------ PostHog
@pytest.mark.parametrize("value, severity, shown", [
    (55, "critical", "55"), (-50, "critical", "-50"), (25.0, "high", "25"), (-12.5, "medium", "-12.5"),
    (9.99, "low", "9.99"), ("55", "low", "0"), (None, "low", "0"),
])
def test_the_reference_posthog_shape_maps_the_change_exactly(value, severity, shown):
    body: dict[str, Any] = {"event": {"name": "error_rate"}, "timeframe": "1h"}
    if value is not None:
        body["value"] = value
    n = posthog.normalize(body)
    assert (n.type, n.severity, n.source_id) == ("metric_change", severity, None)
    assert n.title == f"PostHog: error_rate {shown}% (1h)"


def test_posthog_reference_fallbacks():
    assert posthog.normalize({}).title == "PostHog: unknown_metric 0% (recent)"
    assert posthog.normalize({"name": "signups", "value": 30}).title == "PostHog: signups 30% (recent)"


def test_a_posthog_insight_alert_is_a_high_signal_naming_the_alert_and_insight():
    n = posthog.normalize(load("posthog/insight_alert_firing.json"))
    assert n.title == "PostHog: alert Checkout conversions dropped firing on Checkout funnel"
    assert (n.type, n.severity, n.source_id) == ("$insight_alert_firing", "high", "01953a6e-8f51-7a7e-9a9b-2f1f0c3c4d5e")
    assert "less than the lower threshold" in (n.description or "")


def test_posthog_exceptions_and_error_tracking_issues_are_high():
    n = posthog.normalize(load("posthog/exception.json"))
    assert (n.title, n.severity) == ("PostHog: TypeError: cart.items is undefined", "high")
    n = posthog.normalize(load("posthog/error_tracking_issue_created.json"))
    assert (n.title, n.severity, n.type) == (
        "PostHog: error tracking issue created: TypeError", "high", "$error_tracking_issue_created")
    assert "cart.items is undefined" in (n.description or "")


def test_any_other_posthog_event_is_low_and_names_the_person():
    body = {"event": {"uuid": "u-1", "event": "$pageview", "distinct_id": "d-9", "properties": {}},
            "person": {"name": "ada@example.com"}}
    n = posthog.normalize(body)
    assert (n.title, n.severity, n.type, n.source_id) == ("PostHog: $pageview by ada@example.com", "low", "$pageview", "u-1")


def test_posthog_identity_is_the_event_uuid_else_the_body_hash():
    assert posthog.identity(load("posthog/exception.json"), b"x") == "01953a70-2c11-7b22-8d33-4e44f5566778"
    assert posthog.identity({"value": 1}, b'{"value":1}').startswith("sha256:")
    assert posthog.identity({}, b"a") != posthog.identity({}, b"b")


# ------------------------------------------------------------------ generic
def test_generic_titles_use_message_then_title_then_type():
    assert title_for("app", "error", {"message": "boom", "title": "t"}) == "[app] error: boom"
    assert title_for("app", "error", {"message": 3, "title": "t"}) == "[app] error: t"
    assert title_for("posthog", "metric_spike", {}) == "[posthog] metric_spike: metric_spike"
    assert len(title_for("x", "y", {"message": "m" * 2000})) == 500


@pytest.mark.parametrize("value, text", [
    (55, "55"), (55.0, "55"), (-12.5, "-12.5"), (0.1, "0.1"), (1e-7, "1e-7"), (1e21, "1e+21"), (2**53, "9007199254740992"),
])
def test_numbers_print_as_javascript_prints_them(value, text):
    assert js_number(value) == text
