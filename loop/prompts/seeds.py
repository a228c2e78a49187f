"""The five default templates every store starts with (contract 6.7).

Seeding is insert-if-absent keyed on the slug (slugs stay reserved after a soft delete, so
a deleted default is not resurrected) and runs in one WATCH/MULTI transaction, so two
processes seeding the same fresh store at once write each default exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loop.models import Row
from loop.prompts import engine
from loop.prompts.fields import DEFAULT_SPECIFICITY, TEMPLATE, TEMPLATE_FIELDS, VERSION, VERSION_FIELDS
from loop.store.types import Pipe

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: Bump when the set of seeds changes (the marker key records what a store has).
SEED_REVISION = "1"


@dataclass(frozen=True)
class Seed:
    slug: str
    name: str
    issue_type: str
    description: str

    @property
    def key(self) -> str:
        return self.slug.replace("-", "_")

    @property
    def template_id(self) -> str:
        return f"tpl_default_{self.key}"

    @property
    def version_id(self) -> str:
        return f"ver_default_{self.key}_v1"

    def content(self) -> str:
        return engine.seed_text(f"{self.slug}.hbs")


SEEDS = (
    Seed("signal-triage", "Signal Triage", "signal",
         "Default for signals: judge whether the signal is real and actionable, file a hypothesis if it is, "
         "close it with the verdict."),
    Seed("hypothesis-planning", "Hypothesis Planning", "hypothesis",
         "Default for hypotheses: design the experiment that proves or disproves it as ordered child tasks."),
    Seed("task-execution", "Task Execution", "task",
         "Default for tasks: do the work, report progress, finish with a summary of what changed."),
    Seed("plan-decomposition", "Plan Decomposition", "plan",
         "Default for plans: split the plan into small, ordered, prioritised child tasks."),
    Seed("monitor-check", "Monitor Check", "monitor",
         "Default for monitors: check the metric against its threshold, raise a signal when it is breached."),
)


def warm() -> None:
    """Compile the shared partials and every seeded template now (about 0.5 s of CPU: pybars
    parses with OMeta), so a server process does not pay it in the first claims it serves,
    when threads that miss the cache together would each wait on the compile lock."""
    engine.partials()
    for s in SEEDS:
        engine.compile_cached(s.content())


def rows(seed: Seed, now: int) -> tuple[Row, Row]:
    template: Row = dict.fromkeys(TEMPLATE_FIELDS)
    template.update(id=seed.template_id, slug=seed.slug, name=seed.name, description=seed.description,
                    conditions={"type": seed.issue_type}, specificity=DEFAULT_SPECIFICITY,
                    activeVersionId=seed.version_id, createdAt=now, updatedAt=now)
    version: Row = dict.fromkeys(VERSION_FIELDS)
    version.update(id=seed.version_id, templateId=seed.template_id, version=1, content=seed.content(),
                   changelog="Initial default template", authorType="human", authorName="system",
                   status="active", usageCount=0, createdAt=now)
    return template, version


def seed(store: RedisStore) -> int:
    """Write the missing defaults; returns how many were written (0 when already seeded)."""
    k = store.keys
    marker = k.prompts_seeded()
    if store.r.get(marker) == SEED_REVISION:
        return 0
    slugs = k.template_slugs()
    now = store.now()

    def tx(pipe: Pipe) -> int:
        taken = pipe.hmget(slugs, [s.slug for s in SEEDS])
        missing = [s for s, owner in zip(SEEDS, taken, strict=True) if owner is None]
        # Sequence numbers are taken before MULTI (INCR is harmless if the transaction retries).
        seqs = [store.next_seq() for _ in missing]
        pipe.multi()
        for s, seq in zip(missing, seqs, strict=True):
            template, version = rows(s, now)
            store.write_row(pipe, TEMPLATE, TEMPLATE_FIELDS, template["id"], template)
            pipe.zadd(k.index("templates"), {template["id"]: seq})
            pipe.hset(slugs, s.slug, template["id"])
            store.write_row(pipe, VERSION, VERSION_FIELDS, version["id"], version)
            pipe.zadd(k.template_versions(template["id"]), {version["id"]: 1})
        if missing:
            pipe.incr(k.prompts_generation())
        pipe.set(marker, SEED_REVISION)
        return len(missing)

    return store.transact(tx, slugs, marker)
