"""Prompt experiments: a candidate version tried on a share of live dispatches, promoted on evidence.

A template may name ``candidateVersionId`` with ``candidateShare`` (1-50 %). Which version an issue
gets is a hash of (template id, issue id) mod 100 compared with the share: deterministic, so a
re-claim of the same issue sees the same version. The evidence per version is dispatch's outcome
counters (``P:dispatch:version:<id>``), a bounded sample of recent completed durations for the
median, and the review count and mean composite score (``P:prompt_version:<id>:experiment``).

The decision (:func:`decide`) is a one-sided two-proportion z-test on completion rate at
alpha = 0.05, once both versions have ``min_sessions`` ended sessions. The worker
(``workers/experiments.py``) applies it in the same WATCH/MULTI transaction as the version switch
(``Versions.switch``), and every decision lands in the template's history.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from loop.errors import BusinessRuleError, Conflict, NotFound
from loop.models import Row
from loop.prompts.fields import MIN_SAMPLES, TEMPLATE, TEMPLATE_FIELDS, VERSION
from loop.prompts.history import SYSTEM_ACTOR
from loop.store.types import Pipe
from loop.tunables import EXPERIMENT_ALPHA as ALPHA
from loop.tunables import EXPERIMENT_BUCKETS
from loop.tunables import EXPERIMENT_Z_CRITICAL as Z_CRITICAL

if TYPE_CHECKING:
    from loop.prompts.templates import Templates, Versions
    from loop.store.base import RedisStore

BUCKETS = EXPERIMENT_BUCKETS


def bucket(template_id: str, issue_id: str) -> int:
    """0-99, stable across processes and restarts (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(f"{template_id}:{issue_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def candidate_for(template: Mapping[str, Any], issue_id: str) -> str | None:
    """The candidate version id when this issue falls in the template's candidate share."""
    candidate = template.get("candidateVersionId")
    share = int(template.get("candidateShare") or 0)
    if not candidate or share <= 0:
        return None
    return str(candidate) if bucket(str(template["id"]), issue_id) < share else None


@dataclass(frozen=True)
class Evidence:
    """What a version's sessions and reviews show (wire names: they are returned as is)."""

    versionId: str
    version: int | None
    claimed: int
    completed: int
    failed: int
    expired: int
    released: int
    ended: int
    completionRate: float | None
    medianDurationMs: float | None
    reviewCount: int
    meanReviewScore: float | None
    renderFailures: int


def gather(store: RedisStore, version_id: str) -> Evidence:
    """Three bounded reads: the counters, the duration sample (capped), the review sums."""
    k = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.hgetall(k.dispatch_version(version_id))
    pipe.zrange(k.version_durations(version_id), 0, -1)
    pipe.hgetall(k.version_experiment(version_id))
    pipe.hget(k.row(VERSION, version_id), "version")
    counters, sample, extra, number = pipe.execute()

    def n(raw: Mapping[str, str], name: str) -> int:
        return int(float(raw.get(name) or 0))

    completed = n(counters, "completed")
    ended = completed + n(counters, "failed") + n(counters, "expired") + n(counters, "released")
    durations = [int(m.rsplit(":", 1)[1]) for m in sample]
    reviews = n(extra, "reviewCount")
    review_sum = n(extra, "reviewSum") / 3  # the sum of the three dimensions: mean composite = sum / 3 / count
    return Evidence(
        versionId=version_id, version=int(number) if number else None, claimed=n(counters, "dispatched"),
        completed=completed, failed=n(counters, "failed"), expired=n(counters, "expired"),
        released=n(counters, "released"), ended=ended,
        completionRate=round(completed / ended, 4) if ended else None,
        medianDurationMs=float(statistics.median(durations)) if durations else None,
        reviewCount=reviews, meanReviewScore=round(review_sum / reviews, 4) if reviews else None,
        renderFailures=n(extra, "renderFailed"),
    )


def z_score(c_done: int, c_n: int, a_done: int, a_n: int) -> float | None:
    """Two-proportion z statistic (pooled) of the candidate's rate over the active one's;
    ``None`` when a side has no sessions, ``0.0`` when both rates are 0 or both are 1."""
    if c_n == 0 or a_n == 0:
        return None
    pooled = (c_done + a_done) / (c_n + a_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / c_n + 1 / a_n))
    if se == 0:
        return 0.0
    return round((c_done / c_n - a_done / a_n) / se, 4)


@dataclass(frozen=True)
class Verdict:
    action: str  # promote | withdraw | wait
    outcome: str  # better | worse | tie | not_enough_data | review_worse | render_failed | awaiting_person
    z: float | None
    significant: bool
    statement: str


def review_worse(active: Evidence, candidate: Evidence) -> bool:
    """Worse only when both versions have enough reviews (MIN_SAMPLES) to compare means."""
    if candidate.reviewCount < MIN_SAMPLES or active.reviewCount < MIN_SAMPLES:
        return False
    assert candidate.meanReviewScore is not None and active.meanReviewScore is not None
    return candidate.meanReviewScore < active.meanReviewScore


def decide(active: Evidence, candidate: Evidence, min_sessions: int, auto_promote: bool) -> Verdict:
    """The decision rule (docs/prompts.md, "Experiments")."""
    if candidate.renderFailures:
        return Verdict("withdraw", "render_failed", None, False,
                       f"The candidate failed to render {candidate.renderFailures} time(s): withdrawn.")
    z = z_score(candidate.completed, candidate.ended, active.completed, active.ended)
    if candidate.ended < min_sessions or active.ended < min_sessions:
        return Verdict("wait", "not_enough_data", z, False,
                       f"Not enough data: {candidate.ended} candidate and {active.ended} active ended sessions; "
                       f"each needs {min_sessions} before the difference is tested.")
    assert z is not None
    rates = f"{candidate.completionRate:.0%} vs {active.completionRate:.0%}, z = {z:.2f}"
    if z <= -Z_CRITICAL:
        return Verdict("withdraw", "worse", z, True,
                       f"The candidate completes significantly less often ({rates}, alpha {ALPHA} one-sided): withdrawn.")
    if z < Z_CRITICAL:
        return Verdict("wait", "tie", z, False,
                       f"No significant difference in completion rate ({rates}; significant from |z| >= {Z_CRITICAL}).")
    if review_worse(active, candidate):
        return Verdict("wait", "review_worse", z, True,
                       f"The candidate completes significantly more often ({rates}) but its mean review score "
                       f"{candidate.meanReviewScore} is below the active {active.meanReviewScore}: not promoted.")
    if not auto_promote:
        return Verdict("wait", "awaiting_person", z, True,
                       f"The candidate completes significantly more often ({rates}); autoPromote is off: "
                       "a person may promote it.")
    return Verdict("promote", "better", z, True,
                   f"The candidate completes significantly more often ({rates}, alpha {ALPHA} one-sided) "
                   "and its review score is not worse: promoted.")


class Experiments:
    """Candidate management, the side-by-side report and the decisions (``store.prompts.experiments``)."""

    def __init__(self, store: RedisStore, templates: Templates, versions: Versions) -> None:
        self.s = store
        self.k = store.keys
        self.templates = templates
        self.versions = versions

    # ------------------------------------------------------------------ reading
    def report(self, template_id: str, min_sessions: int) -> dict[str, Any]:
        """``GET /api/templates/:id/experiment``: active vs candidate side by side, and the verdict."""
        template = self.templates.get_live(template_id)
        active_id, candidate_id = template["activeVersionId"], template["candidateVersionId"]
        active = gather(self.s, active_id) if active_id else None
        candidate = gather(self.s, candidate_id) if candidate_id else None
        verdict = None
        if active is not None and candidate is not None:
            verdict = asdict(decide(active, candidate, min_sessions, bool(template["autoPromote"])))
            verdict.update(alpha=ALPHA, test="two-proportion z-test, one-sided, on completion rate",
                           minSessions=min_sessions)
        return {
            "templateId": template_id, "candidateShare": template["candidateShare"],
            "autoPromote": bool(template["autoPromote"]),
            "active": asdict(active) if active else None, "candidate": asdict(candidate) if candidate else None,
            "verdict": verdict,
        }

    # ------------------------------------------------------------------ candidate set / clear
    def set_candidate(self, template_id: str, version_id: str, share: int, auto_promote: bool,
                      actor: str) -> Row:
        """Name a candidate. It must belong to the template, not be active, compile and not have failed."""
        self.templates.get_live(template_id)
        version = self.versions.get(version_id)
        if version is None or version["templateId"] != template_id:
            raise NotFound("Version not found")
        if version["status"] == "active":
            raise BusinessRuleError("Version is already active")
        self.versions.check_renders(version)
        tkey = self.k.row(TEMPLATE, template_id)

        def tx(pipe: Pipe) -> Row:
            template = self._live(pipe, template_id)
            if template["activeVersionId"] == version_id:
                raise BusinessRuleError("Version is already active")
            changes = {"candidateVersionId": version_id, "candidateShare": share, "autoPromote": auto_promote,
                       "updatedAt": self.s.now()}
            pipe.multi()
            self.s.write_row(pipe, TEMPLATE, TEMPLATE_FIELDS, template_id, changes)
            self.versions.stage_history(pipe, template_id, "candidate_set", actor, template["activeVersionId"],
                                        version_id, f"candidate at {share}% (autoPromote {auto_promote})", None)
            pipe.incr(self.k.prompts_generation())
            return {**template, **changes}

        return self.s.transact(tx, tkey)

    def clear_candidate(self, template_id: str, actor: str, action: str = "candidate_clear",
                        reason: str = "candidate cleared", figures: Mapping[str, Any] | None = None,
                        expect: str | None = None) -> Row:
        """End the experiment without a switch (a clear, or a withdrawal with its figures)."""
        self.templates.get_live(template_id)
        tkey = self.k.row(TEMPLATE, template_id)

        def tx(pipe: Pipe) -> Row:
            template = self._live(pipe, template_id)
            candidate = template["candidateVersionId"]
            if not candidate:
                raise BusinessRuleError("Template has no candidate version")
            if expect is not None and candidate != expect:
                raise Conflict("The candidate changed while it was evaluated")
            changes: dict[str, Any] = {"candidateVersionId": None, "candidateShare": None, "autoPromote": None,
                                       "updatedAt": self.s.now()}
            pipe.multi()
            self.s.write_row(pipe, TEMPLATE, TEMPLATE_FIELDS, template_id, changes)
            self.versions.stage_history(pipe, template_id, action, actor, template["activeVersionId"], candidate,
                                        reason, figures)
            pipe.incr(self.k.prompts_generation())
            return {**template, **changes}

        return self.s.transact(tx, tkey)

    def promote_candidate(self, template_id: str, actor: str, reason: str = "promoted by a person",
                          figures: Mapping[str, Any] | None = None) -> Row:
        template = self.templates.get_live(template_id)
        candidate = template["candidateVersionId"]
        if not candidate:
            raise BusinessRuleError("Template has no candidate version")
        return self.versions.promote(template_id, candidate, actor=actor, reason=reason, figures=figures,
                                     expect_candidate=candidate)

    def rollback(self, template_id: str, actor: str) -> Row:
        """Re-activate the version the latest promotion (or rollback) retired."""
        self.templates.get_live(template_id)
        entries, _ = self.versions.history(template_id, 100, 0)
        previous = next((e["fromVersionId"] for e in entries
                         if e["action"] in ("promote", "rollback") and e.get("fromVersionId")), None)
        if previous is None:
            raise BusinessRuleError("Nothing to roll back to: no recorded promotion")
        return self.versions.promote(template_id, previous, actor=actor, action="rollback",
                                     reason="rolled back to the version active before the last promotion")

    def record_render_failure(self, version_id: str) -> None:
        self.s.r.hincrby(self.k.version_experiment(version_id), "renderFailed", 1)

    # ------------------------------------------------------------------ the worker's decisions
    def evaluate(self, template_id: str, min_sessions: int) -> Verdict | None:
        """Decide one template's experiment and apply it; ``None`` when it has none.

        The switch is conditional on the candidate still being the one evaluated (WATCH on the
        template row): a person's change in between wins and this decision is dropped.
        """
        template = self.templates.get_live(template_id)
        active_id, candidate_id = template["activeVersionId"], template["candidateVersionId"]
        if not active_id or not candidate_id:
            return None
        active, candidate = gather(self.s, active_id), gather(self.s, candidate_id)
        verdict = decide(active, candidate, min_sessions, bool(template["autoPromote"]))
        figures = {"active": asdict(active), "candidate": asdict(candidate), "z": verdict.z, "alpha": ALPHA,
                   "minSessions": min_sessions, "outcome": verdict.outcome}
        try:
            if verdict.action == "promote":
                self.promote_candidate(template_id, SYSTEM_ACTOR, verdict.statement, figures)
            elif verdict.action == "withdraw":
                self.clear_candidate(template_id, SYSTEM_ACTOR, "withdraw", verdict.statement, figures,
                                     expect=candidate_id)
        except (Conflict, BusinessRuleError):
            return None  # changed under us (or the candidate cannot render): the next sweep decides again
        return verdict

    def sweep(self, min_sessions: int) -> dict[str, Verdict]:
        """Evaluate every live template with a candidate (the template list is small and cached)."""
        out: dict[str, Verdict] = {}
        for template in self.templates.live_all():
            if template["candidateVersionId"]:
                try:
                    verdict = self.evaluate(template["id"], min_sessions)
                except NotFound:
                    continue  # deleted meanwhile
                if verdict is not None:
                    out[template["id"]] = verdict
        return out

    def _live(self, pipe: Pipe, template_id: str) -> Row:
        template = self.s.get_row(TEMPLATE, TEMPLATE_FIELDS, template_id, client=pipe)
        if template is None or template["deletedAt"] is not None:
            raise NotFound("Template not found")
        return template
