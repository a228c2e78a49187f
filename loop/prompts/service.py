"""``store.prompts``: templates, versions, reviews, selection and rendering in one facade.

Dispatch calls :meth:`PromptService.render_for_dispatch` for each claimed issue; the API
resources call the rest. Agent sessions come from dispatch when the service is built with it
(``dispatch=True``: the context reads its sessions with dispatch's keys and codec;
``version_stats`` gives the outcome counters); without it they are empty.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loop.dispatch import sessions
from loop.errors import NotFound, PromptRenderError
from loop.models import Row
from loop.prompts import context as ctxmod
from loop.prompts import engine, seeds, selection
from loop.prompts.experiments import Experiments, candidate_for
from loop.prompts.fields import REVIEW_URL, TEMPLATE, TEMPLATE_FIELDS, VERSION
from loop.prompts.reviews import Reviews
from loop.prompts.templates import Templates, Versions
from loop.redis_commands import Pipe
from loop.scripts import run_staged
from loop.tunables import PROMPT_CACHE_LIMIT as CACHE_LIMIT

if TYPE_CHECKING:
    from loop.store.base import RedisStore



@dataclass(frozen=True)
class Compiled:
    version_id: str
    template_id: str
    number: int
    render: engine.Renderer


@dataclass(frozen=True)
class Choice:
    template: Row
    version: Compiled | None
    #: Set when ``version`` is the template's candidate: the active version to fall back to.
    active_id: str | None = None


class PromptService:
    def __init__(self, store: RedisStore, dispatch: bool = True) -> None:
        self.s = store
        #: Whether dispatch runs beside the engine (its sessions and version counters exist).
        self.dispatch = dispatch
        self._seeded = False
        self._seed_lock = threading.Lock()
        self.templates = Templates(store, self.ensure_seeded)
        self.versions = Versions(store, self.templates, self.version_stats)
        self.reviews = Reviews(store, self.templates)
        self.experiments = Experiments(store, self.templates, self.versions)
        self._compiled: dict[str, Compiled] = {}
        self._catalog: tuple[str | None, list[Row]] = (None, [])

    # ------------------------------------------------------------------ plumbing
    def ensure_seeded(self) -> None:
        """Seed the default templates once per process (cheap after the first call)."""
        if self._seeded:
            return
        with self._seed_lock:
            if not self._seeded:
                seeds.seed(self.s)
                self._seeded = True

    def version_stats(self, version_id: str) -> Mapping[str, Any] | None:
        return sessions.version_stats(self.s.r, self.s.keys, version_id) if self.dispatch else None

    def catalog(self, generation: str | None = None) -> list[Row]:
        """Live templates in creation order, cached until ``P:prompts:generation`` moves
        (pass the generation when it was read already)."""
        self.ensure_seeded()
        if generation is None:
            generation = self.s.r.get(self.s.keys.prompts_generation())
        cached_gen, rows = self._catalog
        if cached_gen is not None and cached_gen == generation:
            return rows
        rows = self.templates.live_all()
        self._catalog = (generation, rows)
        return rows

    def compiled(self, version_id: str) -> Compiled | None:
        """The compiled version (cached by id), or ``None`` if the version row is missing."""
        hit = self._compiled.get(version_id)
        if hit is not None:
            return hit
        row = self.versions.get(version_id)
        if row is None:
            return None
        try:
            fn = engine.compile_cached(row["content"])
        except engine.TemplateError as exc:
            raise PromptRenderError(f"Prompt version {version_id} does not compile: {exc.message}") from None
        hit = Compiled(version_id, row["templateId"], int(row["version"]), fn)
        if len(self._compiled) >= CACHE_LIMIT:
            self._compiled.clear()
        self._compiled[version_id] = hit
        return hit

    # ------------------------------------------------------------------ selection + rendering
    def facts(self, issue: Row, claim: Mapping[str, Any] | None = None) -> ctxmod.Facts:
        # With dispatch installed the context reads the sessions itself, in the same round trip
        # (the same rows ``sessions_for_issue`` returns; a test holds the two equal).
        return ctxmod.load(self.s, issue, None if self.dispatch else [], claim)

    def choose(self, facts: ctxmod.Facts) -> Choice | None:
        """Dispatch selection: 6.2, then the type fallbacks, then the seeded default of the type."""
        ctx = selection.match_context(facts.issue, facts.label_names, facts.has_failed_sessions)
        template = selection.select(self.catalog(facts.generation), ctx)
        if template is None:
            default_id = selection.DEFAULT_TEMPLATE_IDS.get(str(facts.issue.get("type")))
            template = self.s.get_row(TEMPLATE, TEMPLATE_FIELDS, default_id) if default_id else None
            if template is None or not template["activeVersionId"]:
                return None
        return self.version_choice(template, str(facts.issue["id"]))

    def version_choice(self, template: Row, issue_id: str) -> Choice:
        """The active version, or the candidate for an issue in the candidate's share (a
        deterministic hash: a re-claim gets the same). A candidate that does not compile is
        counted as a render failure (the worker withdraws it) and the active version is used."""
        candidate = candidate_for(template, issue_id)
        if candidate is not None:
            try:
                compiled = self.compiled(candidate)
            except PromptRenderError:
                compiled = None
            if compiled is not None:
                return Choice(template, compiled, active_id=template["activeVersionId"])
            self.experiments.record_render_failure(candidate)
        return Choice(template, self.compiled(template["activeVersionId"]))

    def render_choice(self, facts: ctxmod.Facts, choice: Choice) -> tuple[Choice, str, dict[str, Any]]:
        """:meth:`render`, falling back to the active version when a candidate fails."""
        try:
            prompt, meta = self.render(facts, choice)
        except PromptRenderError:
            if choice.active_id is None or choice.version is None:
                raise
            self.experiments.record_render_failure(choice.version.version_id)
            choice = Choice(choice.template, self.compiled(choice.active_id))
            if choice.version is None:
                raise
            prompt, meta = self.render(facts, choice)
        return choice, prompt, meta

    def render(self, facts: ctxmod.Facts, choice: Choice) -> tuple[str, dict[str, Any]]:
        """Hydrate and render; raises :class:`PromptRenderError`."""
        version = choice.version
        assert version is not None
        meta = {"templateId": choice.template["id"], "templateSlug": choice.template["slug"],
                "versionId": version.version_id, "versionNumber": version.number}
        variables = {**facts.variables, "meta": meta}
        try:
            prompt = engine.render(version.render, variables, engine.partials())
        except Exception as exc:  # any failure inside a template is a render failure
            raise PromptRenderError(
                f"Prompt template {choice.template['slug']} v{version.number} failed to render: {exc}"
            ) from exc
        return prompt, meta

    def render_for_dispatch(self, issue: Row, claim: Mapping[str, Any] | None = None, record: bool = False
                            ) -> tuple[str | None, dict[str, Any] | None]:
        """The prompt and ``meta`` for a just-claimed issue (decoded row); bumps usage.

        Renders first, then counts the use of the rendered version in one command (``steps.lua``,
        what a MULTI would write), with, for ``record`` (dispatch's claim), the version recorded on
        the claim's session (``claim["sessionId"]``) and counted in dispatch's per-version counters
        (:func:`loop.dispatch.sessions.stage_version`).

        ``(None, None)`` when no template applies. Raises :class:`PromptRenderError` if the
        chosen template cannot render, so the caller can put the issue back (nothing is then
        counted or recorded).
        """
        session_id = str(claim["sessionId"]) if record and claim and claim.get("sessionId") else None
        facts = self.facts(issue, claim)
        choice = self.choose(facts)
        if choice is None or choice.version is None:
            return None, None
        choice, prompt, meta = self.render_choice(facts, choice)
        assert choice.version is not None
        version_id = choice.version.version_id

        def count(pipe: Pipe) -> None:
            pipe.hincrby(self.s.keys.row(VERSION, version_id), "usageCount", 1)
            if session_id is not None:
                sessions.stage_version(pipe, self.s.keys, session_id, version_id)

        run_staged(self.s.r, self.s.scripts, count)  # one command, as atomic as the MULTI it replaces
        return prompt, {**meta, "reviewUrl": REVIEW_URL}

    def preview(self, issue_id: str) -> dict[str, Any]:
        """Dry run for any live issue: selection (preview fallback of 6.2) and rendering."""
        issue = self.s.issues.get_live(issue_id)
        facts = self.facts(issue)
        ctx = selection.match_context(issue, facts.label_names, facts.has_failed_sessions)
        usable = selection.usable(self.catalog(facts.generation))
        template = selection.best_match(usable, ctx) or selection.preview_fallback(usable, str(issue["type"]))
        out: dict[str, Any] = {
            "issue": {"id": issue["id"], "number": issue["number"], "title": issue["title"], "type": issue["type"]},
            "template": None, "version": None, "prompt": None,
        }
        if template is None:
            out["message"] = "No matching template found"
            return out
        out["template"] = {k: template[k] for k in ("id", "slug", "name", "conditions", "specificity")}
        choice = self.version_choice(template, issue_id)
        if choice.version is None:
            out["message"] = "Active version not found"
            return out
        choice, out["prompt"], _ = self.render_choice(facts, choice)
        assert choice.version is not None
        out["version"] = {"id": choice.version.version_id, "version": choice.version.number}
        return out

    # ------------------------------------------------------------------ reads for the API
    def template_detail(self, template_id: str) -> Row:
        template = self.templates.get_live(template_id)
        active = self.versions.get(template["activeVersionId"]) if template["activeVersionId"] else None
        return {**self.templates.wire(template), "activeVersion": self.versions.wire(active) if active else None}

    def version(self, version_id: str) -> Row:
        row = self.versions.get(version_id)
        if row is None:
            raise NotFound("Version not found")
        return row

    def dashboard(self) -> list[Row]:
        """``GET /api/dashboard/prompts``: one entry per live template."""
        out = []
        for template in self.catalog():
            recent = self.versions.recent(template["id"], 5)
            active_id = template["activeVersionId"]
            active = next((v for v in recent if v["id"] == active_id), None)
            if active is None and active_id:
                # The reference drops an active version older than the 5 newest; we don't.
                active = self.versions.get(active_id)
            active_wire = self.versions.wire(active) if active else None
            summary = self.reviews.summary(template["id"])
            composite = active["reviewScore"] if active else None
            rate = active_wire["completionRate"] if active_wire else None
            out.append({
                "template": self.templates.wire(template),
                "activeVersion": active_wire,
                "recentVersions": [self.versions.wire(v) for v in recent],
                "reviewSummary": {**summary, "compositeScore": composite},
                "needsAttention": bool((composite is not None and composite < 3.0) or (rate is not None and rate < 0.5)),
            })
        return out

