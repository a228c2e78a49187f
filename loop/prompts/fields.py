"""Row layouts and constants of the prompt engine (templates, versions, reviews)."""

from __future__ import annotations

TEMPLATE_FIELDS: dict[str, str] = {
    "id": "s", "slug": "s", "name": "s", "description": "s", "conditions": "j", "specificity": "i",
    "projectId": "s", "activeVersionId": "s", "createdAt": "t", "updatedAt": "t", "deletedAt": "t",
    "candidateVersionId": "s", "candidateShare": "i", "autoPromote": "b",
}
VERSION_FIELDS: dict[str, str] = {
    "id": "s", "templateId": "s", "version": "i", "content": "s", "changelog": "s", "authorType": "s",
    "authorName": "s", "status": "s", "usageCount": "i", "completionRate": "f", "avgDurationMs": "f",
    "reviewScore": "f", "createdAt": "t",
}
REVIEW_FIELDS: dict[str, str] = {
    "id": "s", "versionId": "s", "issueId": "s", "clarity": "i", "completeness": "i", "relevance": "i",
    "feedback": "s", "authorType": "s", "createdAt": "t",
}

#: Row kinds (``P:<kind>:<id>`` hashes).
TEMPLATE = "template"
VERSION = "prompt_version"
REVIEW = "prompt_review"

SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
DEFAULT_SPECIFICITY = 10

#: The review loop's constants (contract 6.5).
EWMA_ALPHA = 0.3
SCORE_THRESHOLD = 3.5
COUNT_THRESHOLD = 15
MIN_SAMPLES = 3

IMPROVEMENT_LABEL = ("prompt-improvement", "#f59e0b")
META_LABEL = ("meta", "#6b7280")
IMPROVEMENT_TITLE = "Improve prompt template: "
REVIEW_URL = "POST /api/prompt-reviews"

TRIPLE_BRACE_MESSAGE = (
    "Triple-brace syntax ({{{) is not allowed. Use double-brace Handlebars expressions instead."
)

#: Sessions that ended without the work being done (hasFailedSessions).
UNSUCCESSFUL_SESSION_STATUSES = ("failed", "expired", "released")
