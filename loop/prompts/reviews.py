"""Prompt reviews: the EWMA score of a version and the self-improvement loop (contract 6.5).

A review and the score it moves are written in one WATCH/MULTI transaction on the version
hash, so concurrent reviews never lose an update. When a version's score is poor (or it
has simply been reviewed a lot), Loop files ONE improvement task per template: the template
id points at the open improvement issue (``P:prompts:improvement:<templateId>``), and a new
one is filed only once that issue is done, canceled or deleted.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loop import models
from loop.errors import NotFound
from loop.ids import new_id
from loop.models import RESOLVED_STATUSES, Row
from loop.prompts.fields import (
    COUNT_THRESHOLD,
    EWMA_ALPHA,
    IMPROVEMENT_LABEL,
    IMPROVEMENT_TITLE,
    META_LABEL,
    MIN_SAMPLES,
    REVIEW,
    REVIEW_FIELDS,
    SCORE_THRESHOLD,
    TEMPLATE,
    TEMPLATE_FIELDS,
    VERSION,
    VERSION_FIELDS,
)
from loop.store.base import is_id
from loop.store.types import Pipe
from loop.tunables import FEEDBACK_QUOTED
from loop.tunables import REVIEW_IMPROVEMENT_LOCK_MS as LOCK_MS

if TYPE_CHECKING:
    from loop.prompts.templates import Templates
    from loop.store.base import RedisStore



def ewma(previous: float | None, composite: float) -> float:
    """``composite`` for the first review, else ``alpha * composite + (1 - alpha) * previous``."""
    value = composite if previous is None else EWMA_ALPHA * composite + (1 - EWMA_ALPHA) * previous
    # Rounded so that binary float noise (0.3 * 3 + 0.7 * 3 = 2.9999999999999996) never
    # crosses a threshold the exact value does not.
    return round(value, 10)


def needs_improvement(score: float, count: int) -> bool:
    return count >= MIN_SAMPLES and (score < SCORE_THRESHOLD or count >= COUNT_THRESHOLD)


class Reviews:
    def __init__(self, store: RedisStore, templates: Templates) -> None:
        self.s = store
        self.k = store.keys
        self.templates = templates

    @staticmethod
    def wire(row: Row) -> Row:
        return models.wire(REVIEW_FIELDS, row)

    def list_for_template(self, template_id: str, limit: int, offset: int) -> tuple[list[Row], int]:
        self.templates.get_live(template_id)
        return self.s.page(self.k.template_reviews(template_id), REVIEW, REVIEW_FIELDS, limit, offset, desc=True)

    def summary(self, template_id: str) -> dict[str, Any]:
        """Review count and per-dimension averages across every version of a template."""
        raw = self.s.r.hgetall(self.k.template_review_stats(template_id))
        n = int(raw.get("count", 0))

        def avg(name: str) -> float | None:
            return int(raw.get(name, 0)) / n if n else None

        return {"totalReviews": n, "avgClarity": avg("clarity"), "avgCompleteness": avg("completeness"),
                "avgRelevance": avg("relevance")}

    def create(self, data: Mapping[str, Any]) -> Row:
        """Store a review, move the version's EWMA score, maybe file an improvement task."""
        version_id = data["versionId"]
        vkey = self.k.row(VERSION, version_id)
        if not is_id(version_id) or not self.s.r.exists(vkey):
            raise NotFound("Version not found")
        review: Row = dict.fromkeys(REVIEW_FIELDS)
        review.update({k: v for k, v in data.items() if k in REVIEW_FIELDS})
        review.update(id=new_id(), createdAt=self.s.now())
        composite = (data["clarity"] + data["completeness"] + data["relevance"]) / 3
        seq = self.s.next_seq()

        def tx(pipe: Pipe) -> tuple[Row, float, int]:
            version = self.s.get_row(VERSION, VERSION_FIELDS, version_id, client=pipe)
            if version is None:
                raise NotFound("Version not found")
            count = int(pipe.zcard(self.k.version_reviews(version_id))) + 1
            score = ewma(version["reviewScore"], composite)
            tid = version["templateId"]
            pipe.multi()
            self.s.write_row(pipe, REVIEW, REVIEW_FIELDS, review["id"], review)
            pipe.zadd(self.k.version_reviews(version_id), {review["id"]: seq})
            pipe.zadd(self.k.template_reviews(tid), {review["id"]: seq})
            stats = self.k.template_review_stats(tid)
            pipe.hincrby(stats, "count", 1)
            for dim in ("clarity", "completeness", "relevance"):
                pipe.hincrby(stats, dim, int(data[dim]))
            pipe.hset(vkey, "reviewScore", repr(float(score)))
            # The experiments' mean score: count and the sum of the three dimensions (integers, no drift).
            evidence = self.k.version_experiment(version_id)
            pipe.hincrby(evidence, "reviewCount", 1)
            pipe.hincrby(evidence, "reviewSum", int(data["clarity"]) + int(data["completeness"]) + int(data["relevance"]))
            return {**version, "reviewScore": score}, score, count

        # The watched key is the version's review index, not its row: reviewScore only changes with a
        # review (which adds to that index in the same MULTI), while the row's usageCount changes with
        # every dispatch; watching the row would starve a review of a busy version.
        version, score, count = self.s.transact(tx, self.k.version_reviews(version_id))
        if needs_improvement(score, count):
            self.file_improvement(version, score, count)
        return review

    # ------------------------------------------------------------------ improvement loop
    def open_improvement(self, template_id: str) -> str | None:
        """The id of the template's open improvement issue, if there is one."""
        issue_id = self.s.r.get(self.k.prompt_improvement(template_id))
        if not issue_id:
            return None
        issue = self.s.issues.get(issue_id)
        if issue is None or issue["deletedAt"] is not None or issue["status"] in RESOLVED_STATUSES:
            return None
        return str(issue_id)

    def file_improvement(self, version: Row, score: float, count: int) -> str | None:
        """Create the improvement task unless one is open; returns the new issue id."""
        tid = version["templateId"]
        if self.open_improvement(tid):
            return None
        lock = self.k.prompt_improvement_lock(tid)
        token = secrets.token_hex(8)
        if not self.s.r.set(lock, token, nx=True, px=LOCK_MS):
            return None  # another review is filing it right now
        try:
            if self.open_improvement(tid):
                return None
            template = self.s.get_row(TEMPLATE, TEMPLATE_FIELDS, tid)
            if template is None or template["deletedAt"] is not None:
                return None  # nobody will improve a deleted template
            label_ids = [self.s.labels.ensure(*IMPROVEMENT_LABEL)["id"], self.s.labels.ensure(*META_LABEL)["id"]]
            pointer = self.k.prompt_improvement(tid)
            issue = self.s.issues.create(
                {
                    "title": f"{IMPROVEMENT_TITLE}{template['slug']} (avg review {score:.1f}/5, "
                             f"{count} reviews since v{version['version']})",
                    "description": self._description(template, version, score, count),
                    "type": "task", "status": "todo", "priority": 3, "labelIds": label_ids,
                },
                extra=lambda pipe, row: pipe.set(pointer, row["id"]),
            )
            return str(issue["id"])
        finally:
            if self.s.r.get(lock) == token:
                self.s.r.delete(lock)

    def _recent_feedback(self, version_id: str) -> list[Row]:
        ids = self.s.r.zrevrange(self.k.version_reviews(version_id), 0, 49)
        rows = self.s.get_rows(REVIEW, REVIEW_FIELDS, ids)
        return [r for r in rows if (r.get("feedback") or "").strip()][:FEEDBACK_QUOTED]

    def _description(self, template: Row, version: Row, score: float, count: int) -> str:
        loop_url = self.s.settings.loop_url.rstrip("/")
        token = self.s.settings.prompt_token_placeholder
        lines = [
            "## Prompt improvement needed",
            "",
            f"Agents reviewing the prompt template **{template['name']}** (`{template['slug']}`, "
            f"template id `{template['id']}`) are telling us it needs work.",
            "",
            f"- Active version: v{version['version']} (`{version['id']}`)",
            f"- Review score (EWMA, alpha {EWMA_ALPHA}): {score:.2f} / 5",
            f"- Reviews of this version: {count}",
            "",
            "### Recent feedback",
            "",
        ]
        feedback = self._recent_feedback(version["id"])
        if not feedback:
            lines.append("_No written feedback yet; only scores._")
        for r in feedback:
            quoted = "\n> ".join(str(r["feedback"]).strip().splitlines())
            lines.append(f"> {quoted}")
            lines.append(f"> — {r['authorType']} review of issue `{r['issueId']}`: clarity {r['clarity']}, "
                         f"completeness {r['completeness']}, relevance {r['relevance']}")
            lines.append("")
        lines += [
            "",
            "### What to do",
            "",
            "1. Read the current content and all the reviews:",
            f"   `curl -sS \"{loop_url}/api/templates/{template['id']}\" -H \"Authorization: Bearer {token}\"`",
            f"   `curl -sS \"{loop_url}/api/templates/{template['id']}/reviews\" -H \"Authorization: Bearer {token}\"`",
            "2. Write a better version that answers the feedback (same variables and partials; see docs/prompts.md)"
            " and create it as a draft: `POST /api/templates/" + template["id"] + "/versions` with "
            "`{\"content\": \"...\", \"changelog\": \"...\", \"authorType\": \"agent\", \"authorName\": \"<you>\"}`.",
            "3. Check the result with `GET /api/templates/preview/<issueId>` for a real issue.",
            "4. Start it as the candidate instead of promoting it blind: Loop tries it on a share of real dispatches "
            "and promotes it only if agents complete more often with it (or withdraws it if they complete less):",
            f"   `curl -sS -X POST \"{loop_url}/api/templates/{template['id']}/candidate\" "
            f"-H \"Authorization: Bearer {token}\" -H \"Content-Type: application/json\" "
            "-d '{\"versionId\": \"<versionId>\", \"share\": 20, \"autoPromote\": true}'`",
            f"   Follow it with `GET /api/templates/{template['id']}/experiment`. (If the template already has a "
            "candidate, say so in your summary instead of replacing it.)",
            "5. Mark this issue done with an `agentSummary` saying what changed, the new version id and that it "
            "runs as the candidate.",
        ]
        return "\n".join(lines)
