"""Which template an issue gets (contract 6.1-6.2), as pure functions over rows.

``templates`` are live template rows in creation order; the sort is stable, so equal
candidates keep that order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loop.models import Row

#: Seeded default template id per issue type (the fallback of last resort).
DEFAULT_TEMPLATE_IDS = {
    "signal": "tpl_default_signal_triage",
    "hypothesis": "tpl_default_hypothesis_planning",
    "plan": "tpl_default_plan_decomposition",
    "task": "tpl_default_task_execution",
    "monitor": "tpl_default_monitor_check",
}


def match_context(issue: Mapping[str, Any], label_names: Sequence[str], has_failed_sessions: bool) -> dict[str, Any]:
    """The facts conditions are matched against (6.1)."""
    hypothesis = issue.get("hypothesis")
    confidence = hypothesis.get("confidence") if isinstance(hypothesis, Mapping) else None
    return {
        "type": issue.get("type"),
        "signalSource": issue.get("signalSource"),
        "labels": list(label_names),
        "projectId": issue.get("projectId"),
        "hypothesisConfidence": confidence if isinstance(confidence, int | float) else None,
        "hasFailedSessions": bool(has_failed_sessions),
    }


def matches(conditions: Mapping[str, Any] | None, ctx: Mapping[str, Any]) -> bool:
    """Every present condition holds (AND); ``{}`` matches everything."""
    for key, want in (conditions or {}).items():
        if key == "type":
            ok = ctx["type"] == want
        elif key in ("signalSource", "projectId"):
            ok = ctx[key] is not None and ctx[key] == want
        elif key == "labels":
            have = set(ctx["labels"])
            ok = all(name in have for name in (want or []))
        elif key == "hasFailedSessions":
            ok = ctx["hasFailedSessions"] == want
        elif key == "hypothesisConfidence":
            ok = ctx["hypothesisConfidence"] is not None and ctx["hypothesisConfidence"] >= want
        else:
            ok = False  # unknown keys cannot be written; never match one if it appears
        if not ok:
            return False
    return True


def _rank(templates: Sequence[Row], project_id: str | None) -> list[Row]:
    """Project-scoped first (when the issue has a project), then specificity descending."""
    def key(t: Row) -> tuple[int, int]:
        boosted = project_id is not None and t.get("projectId") == project_id
        return (0 if boosted else 1, -int(t.get("specificity") or 0))

    return sorted(templates, key=key)


def usable(templates: Sequence[Row]) -> list[Row]:
    """Templates with an active version pointer (6.2 step 1)."""
    return [t for t in templates if t.get("activeVersionId")]


def best_match(templates: Sequence[Row], ctx: Mapping[str, Any]) -> Row | None:
    """6.2 steps 2-4 over usable templates: matching ones, ranked, the first."""
    ranked = _rank([t for t in templates if matches(t.get("conditions"), ctx)], ctx["projectId"])
    return ranked[0] if ranked else None


def select(templates: Sequence[Row], ctx: Mapping[str, Any]) -> Row | None:
    """The template an issue gets at dispatch: 6.2 selection, then :func:`fallback`."""
    candidates = usable(templates)
    return best_match(candidates, ctx) or fallback(candidates, ctx)


def fallback(candidates: Sequence[Row], ctx: Mapping[str, Any]) -> Row | None:
    """When nothing matches, fall back to a template made for the issue's type.

    First the default templates of the type (conditions exactly ``{"type": <type>}``), then
    any template whose ``type`` condition names the type (its other conditions unmet: a
    type-specific prompt beats no prompt), each ranked like a normal selection. The seeded
    default of the type, even if it was deleted or narrowed, is the caller's last resort.
    """
    issue_type = ctx["type"]
    exact = [t for t in candidates if (t.get("conditions") or {}) == {"type": issue_type}]
    ranked = _rank(exact, ctx["projectId"])
    if ranked:
        return ranked[0]
    typed = [t for t in candidates if (t.get("conditions") or {}).get("type") == issue_type]
    ranked = _rank(typed, ctx["projectId"])
    return ranked[0] if ranked else None


def preview_fallback(candidates: Sequence[Row], issue_type: str) -> Row | None:
    """Preview's fallback (6.2): the first template, in creation order, with an active version
    whose ``type`` condition is the issue's type, whatever its other conditions."""
    for t in candidates:
        if t.get("activeVersionId") and (t.get("conditions") or {}).get("type") == issue_type:
            return t
    return None
