"""Dispatch score (contract 5.2 + improvement 7) and its order-preserving stored form.

``score = priorityWeight + typeBonus + goalBonus + ageBonus`` with ``ageBonus`` = whole days
since ``createdAt``. Every issue ages at the same rate, so ordering by ``weight + age`` is
ordering by ``weight - createdAt/day``: that value (:func:`stored_score`) is what the ready
sorted sets hold. It never changes with time, only when priority, type or the goal bonus of
the issue's project change, and then the issue is rescored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DAY_MS = 86_400_000
PRIORITY_WEIGHT: dict[int, int] = {1: 100, 2: 75, 3: 50, 4: 25, 0: 10}
DEFAULT_PRIORITY_WEIGHT = 10
TYPE_BONUS: dict[str, int] = {"signal": 50, "hypothesis": 40, "plan": 30, "task": 20, "monitor": 10}
GOAL_BONUS = 20


def priority_weight(priority: Any) -> int:
    return PRIORITY_WEIGHT.get(priority, DEFAULT_PRIORITY_WEIGHT) if isinstance(priority, int) else (
        DEFAULT_PRIORITY_WEIGHT)


def type_bonus(issue_type: Any) -> int:
    return TYPE_BONUS.get(issue_type, 0) if isinstance(issue_type, str) else 0


def weight(issue: Mapping[str, Any], goal_bonus: int) -> int:
    """The time-independent part of the score."""
    return priority_weight(issue.get("priority")) + type_bonus(issue.get("type")) + goal_bonus


def stored_score(issue: Mapping[str, Any], goal_bonus: int) -> float:
    """The ready-set score: ``weight - createdAt`` in days (same order as the live score)."""
    return weight(issue, goal_bonus) - int(issue["createdAt"]) / DAY_MS


def age_days(created_at_ms: int, now_ms: int) -> int:
    """Whole days since creation (floored; never negative)."""
    return max(0, (now_ms - created_at_ms) // DAY_MS)


def breakdown(issue: Mapping[str, Any], goal_bonus: int, now_ms: int) -> dict[str, int]:
    return {
        "priorityWeight": priority_weight(issue.get("priority")),
        "goalBonus": goal_bonus,
        "ageBonus": age_days(int(issue["createdAt"]), now_ms),
        "typeBonus": type_bonus(issue.get("type")),
    }


def score(issue: Mapping[str, Any], goal_bonus: int, now_ms: int) -> int:
    """The score the queue reports: the sum of :func:`breakdown`."""
    return sum(breakdown(issue, goal_bonus, now_ms).values())


def member(issue_id: str, project_id: str | None) -> str:
    """Ready-set member: the issue id and its project, so a claim knows both ready sets to update."""
    return f"{issue_id}|{project_id or ''}"


def parse_member(value: str) -> tuple[str, str | None]:
    """``(issueId, projectId|None)``; issue ids never contain ``|``, project ids may."""
    issue_id, _, project_id = value.partition("|")
    return issue_id, project_id or None
