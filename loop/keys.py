"""Every Redis key name Loop uses, and the tunables that go with them.

All keys of one namespace share the hash tag ``{<namespace>}`` so that every key a
multi-key script or MULTI/EXEC touches lives in one Redis Cluster slot. Nothing else in
the code base spells a key name: build it here.

Key schema (``P`` = ``{<namespace>}``):

=====================================  ======  ===============================================
key                                    type    purpose
=====================================  ======  ===============================================
P:seq:issue                            string  INCR counter for issue numbers
P:seq:row                              string  INCR counter ordering projects/goals/labels/...
P:issue:<id>                           hash    one issue (wire fields; JSON for objects)
P:issues:ids                           string  issue id by number: ID_WIDTH bytes at (number-1)*ID_WIDTH
P:bits:issues                          string  bitmap of live issues: bit <number> set
P:bits:issues:status:<status>          string  bitmap of live issues by status (bit <number>)
P:bits:issues:type:<type>              string  bitmap of live issues by type
P:bits:issues:priority:<p>             string  bitmap of live issues by priority
P:idx:issues:project:<projectId>       zset    live issues by project, score = number
P:idx:issues:parent:<parentId>         zset    live issues by parent (children lists)
P:idx:issues:label:<labelId>           zset    live issues carrying a label
P:counts:project_status                hash    "<projectId>|<status>" -> live issue count
P:counts:project_type                  hash    "<projectId>|<type>" -> live issue count (list totals)
P:counts:project_status_type           hash    "<projectId>|<status>|<type>" -> live issue count
P:idx:issues:completed                 zset    live done issues, score = completedAt (dashboard)
P:idx:issues:roots                     zset    live root issues, score = latest updatedAt of the
                                               root or any of its children (dashboard activity)
P:stats:day:<YYYY-MM-DD>               hash    "created:<type>" / "done:<type>" -> issues created / completed
                                               that UTC day (event counters, TTL; loop/store/daystats.py)
P:stats:hour:<YYYY-MM-DDTHH>           hash    the same per UTC hour (the overview's 24 h window, TTL)
P:issue:<id>:labels                    set     label ids linked to the issue
P:issue:<id>:relations                 zset    outgoing relation ids, score = row seq
P:issue:<id>:comments                  zset    comment ids, score = row seq
P:relation:<id>                        hash    one relation
P:comment:<id>                         hash    one comment
P:project:<id> / P:goal:<id> / ...     hash    one project / goal / label
P:idx:projects / goals / labels        zset    live rows, score = row seq (creation order)
P:idx:goals:status:<status>            zset    live goals with that status, score = row seq
P:labels:names                         hash    label name -> id (unique across deleted rows)
P:apikeys                              hash    sha256(key) -> JSON {id, name, createdAt}
P:apikeys:names                        hash    key name -> sha256(key)
P:signal:<id>                          hash    one signal (payload kept as JSON)
P:idx:signals                          zset    signals, score = their triage issue's number
P:idx:signals:<field>:<value>          zset    signals by source / severity / project
P:counts:signals                       hash    JSON [[filter, value], ...] of 2-3 filters -> signal count
P:webhook:<provider>:<digest>          string  webhook dedup marker -> RQ job id (TTL >= 7 days)
P:webhook-body:<provider>:<digest>     string  the same for the SHA-256 of the raw signed body (replays)
P:webhook-outbox                       hash    job id -> job spec of an accepted delivery not yet known
                                               enqueued on a separate queue Redis (LOOP_QUEUE_URL)
P:webhook-outbox:due                   zset    the outbox's job ids, score = accepted at (ms)
P:signals:done:<provider>:<digest>     string  delivery already normalized -> signal id (TTL)
P:signal:group:<digest>                string  fingerprint (first 32 hex of SHA-256) -> its triage issue id
P:goal:<id>:readings                   zset    the goal's last 1,000 readings (JSON), score = at (ms)
P:goal:<id>:daily                      hash    "<YYYY-MM-DD>:n" / ":sum" -> count / sum of that UTC day's readings
P:goals:metric:<metric>                set     live goals whose metric is <metric> (metric signals)
P:idem:<digest>                        string  stored response of an Idempotency-Key (TTL)
P:health:probe                         string  GET /health's write probe (TTL 60 s)
P:replica:probe                        string  LOOP_WAIT_REPLICAS' write before WAIT (TTL 60 s)
P:health:lease_sweep                   string  epoch ms of the last periodic lease sweep
P:template:<id>                        hash    one prompt template
P:prompt_version:<id> / prompt_review  hash    one prompt version / review
P:templates:slugs                      hash    template slug -> id (unique across deleted rows)
P:template:<id>:versions               zset    version ids, score = version number
P:template:<id>:reviews                zset    review ids of all versions, score = row seq
P:template:<id>:review_stats           hash    count / clarity / completeness / relevance sums
P:prompt_version:<id>:reviews          zset    review ids of one version, score = row seq
P:prompts:generation                   string  INCR on every template/version write (cache key)
P:prompts:seeded                       string  seed revision written (idempotent seeding)
P:prompts:improvement:<templateId>     string  id of the open prompt-improvement issue
P:prompts:improvement:<tid>:lock       string  short NX lock while that issue is created
P:template:<id>:history                zset    decisions on the template's versions (JSON), score = row seq
P:prompt_version:<id>:experiment       hash    reviewCount/reviewSum/renderFailed (experiment evidence)
P:dispatch:version:<id>:durations      zset    "<sid>:<ms>" of recent completed sessions, score = end ms
P:dispatch:ready                       zset    dispatchable issues "<id>|<projectId>", score = static score
P:dispatch:ready:project:<projectId>   zset    the same members for one project
P:dispatch:issue:<id>                  hash    dispatch state: blocked (count), session, strikes
P:dispatch:blockers:<id>               hash    blocker id -> relation rows making it block <id>
P:dispatch:blocking:<id>               hash    blocked id -> relation rows making <id> block it
P:dispatch:blocked                     zset    issues with a positive blocked count, score = blocked since (ms)
P:dispatch:leases                      zset    active session ids, score = lease expiry (ms)
P:dispatch:scheduled                   zset    todo issues waiting for notBefore "<id>|<projectId>", score = notBefore (ms)
P:dispatch:goalbonus                   hash    projectId -> goal bonus now applied to its scores
P:dispatch:goal_links / project_links  hash    goalId -> projectId / projectId -> goalId (indexed)
P:dispatch:project_goals:<projectId>   set     goals whose projectId is the project
P:dispatch:goal_projects:<goalId>      set     projects whose goalId is the goal
P:dispatch:version:<versionId>         hash    session counters of one prompt version
P:session:<id>                         hash    one agent session (claim)
P:issue:<id>:sessions                  zset    session ids of an issue, score = claimedAt
P:retention:<kind>                     zset    what retention purges: sessions / issues / payloads by time
=====================================  ======  ===============================================

Dispatch, signals and prompt keys are listed in docs/architecture.md next to these and are
built by the methods further down.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

#: Width of an issue id in ``P:issues:ids`` (ids are fixed-width, see ``loop.ids``).
ID_WIDTH = 24
# Limits, batches, timeouts and retries live in loop/tunables.py.


@dataclass(frozen=True)
class Keys:
    """Builds the key names of one Loop namespace."""

    namespace: str = "loop"

    def __post_init__(self) -> None:
        # "{ns}" opens every key, so the cluster hashes the namespace alone: one slot per namespace.
        # An empty tag or a brace inside it would hash the whole key (keys spread over slots).
        if not self.namespace or "{" in self.namespace or "}" in self.namespace or len(self.namespace) > 64:
            raise ValueError(f"a key namespace is 1-64 characters without braces, got {self.namespace!r}")

    @cached_property
    def prefix(self) -> str:
        # Built once per Keys (a write names ~20 keys); cached_property bypasses the frozen setattr.
        return "{" + self.namespace + "}"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":" + ":".join(parts)

    # counters
    def issue_seq(self) -> str:
        return self._k("seq", "issue")

    def row_seq(self) -> str:
        return self._k("seq", "row")

    # generic rows: issue, project, goal, label, relation, comment, signal, template, ...
    def row(self, kind: str, row_id: str) -> str:
        return self._k(kind, row_id)

    def row_prefix(self, kind: str) -> str:
        """What :meth:`row` puts before the id (``row(kind, i) == row_prefix(kind) + i``): a page's
        50 keys are built with one join."""
        return self._k(kind, "")

    def issue(self, issue_id: str) -> str:
        return self._k("issue", issue_id)

    def index(self, kind: str) -> str:
        """Creation-ordered zset of live rows of one kind (``issues``, ``projects``...)."""
        return self._k("idx", kind)

    def status_index(self, kind: str, status: str) -> str:
        """Creation-ordered zset of the live rows of one kind (``goals``) with that status."""
        return self._k("idx", kind, "status", status)

    def issue_index(self, field: str, value: str) -> str:
        """Zset of live issues whose ``field`` (project, parent, label) equals ``value``."""
        return self._k("idx", "issues", field, value)

    def issue_bits(self, field: str | None = None, value: str = "") -> str:
        """Bitmap of live issues (by number), or of those whose ``field`` (status, type,
        priority: few values, so a bit per issue is far smaller than a zset entry) is ``value``."""
        return self._k("bits", "issues", field, value) if field else self._k("bits", "issues")

    def issue_ids(self) -> str:
        """Fixed-width id of every issue by number (what the bitmaps' bit offsets name)."""
        return self._k("issues", "ids")

    def counts(self, name: str) -> str:
        return self._k("counts", name)

    def issue_labels(self, issue_id: str) -> str:
        return self._k("issue", issue_id, "labels")

    def issue_relations(self, issue_id: str) -> str:
        return self._k("issue", issue_id, "relations")

    def issue_relations_in(self, issue_id: str) -> str:
        """Relations whose ``relatedIssueId`` is this issue (incoming), scored like the outgoing list."""
        return self._k("issue", issue_id, "relations", "in")

    def issue_comments(self, issue_id: str) -> str:
        return self._k("issue", issue_id, "comments")

    def label_names(self) -> str:
        return self._k("labels", "names")

    def template_slugs(self) -> str:
        return self._k("templates", "slugs")

    def apikeys(self) -> str:
        return self._k("apikeys")

    def apikey_names(self) -> str:
        return self._k("apikeys", "names")

    def idempotency(self, digest: str) -> str:
        return self._k("idem", digest)

    # signals and webhooks (docs/webhooks.md)
    def signal_index(self, field: str | None = None, value: str = "") -> str:
        """All signals (no ``field``), or those whose ``field`` (source/severity/project) is ``value``."""
        return self._k("idx", "signals", field, value) if field else self._k("idx", "signals")

    def webhook_delivery(self, provider: str, digest: str) -> str:
        return self._k("webhook", provider, digest)

    def webhook_body(self, provider: str, digest: str) -> str:
        """Dedup marker of a signed body (a replay with a fresh delivery id is still a duplicate)."""
        return self._k("webhook-body", provider, digest)

    def webhook_outbox(self) -> str:
        """Accepted deliveries whose RQ job (on a separate queue Redis) may not exist yet: job id -> spec."""
        return self._k("webhook-outbox")

    def webhook_outbox_due(self) -> str:
        """The outbox's job ids by acceptance time (ms): what the worker's relay looks at."""
        return self._k("webhook-outbox", "due")

    def signal_done(self, provider: str, digest: str) -> str:
        return self._k("signals", "done", provider, digest)

    def signal_group(self, digest: str) -> str:
        """Fingerprint (its SHA-256 digest: fixed size, no separators) -> the triage issue it opened."""
        return self._k("signal", "group", digest)

    # goal readings (docs/signals.md)
    def goal_readings(self, goal_id: str) -> str:
        return self._k("goal", goal_id, "readings")

    def goal_daily(self, goal_id: str) -> str:
        return self._k("goal", goal_id, "daily")

    def goals_by_metric(self, metric: str) -> str:
        return self._k("goals", "metric", metric)

    # health (loop/health.py)
    def health_probe(self) -> str:
        return self._k("health", "probe")

    def replica_probe(self) -> str:
        """Written right before a ``WAIT`` (LOOP_WAIT_REPLICAS) so the WAIT covers every earlier write."""
        return self._k("replica", "probe")

    def lease_sweep(self) -> str:
        """When the periodic lease sweep last ran (epoch ms): readiness says when it is overdue."""
        return self._k("health", "lease_sweep")

    def tmp(self, token: str) -> str:
        return self._k("tmp", token)

    def retention(self, kind: str) -> str:
        """Time-ordered zset of what retention will purge: ``sessions`` (closed, score endedAt),
        ``issues`` (soft-deleted, score deletedAt), ``payloads`` (signal ids, score createdAt)."""
        return self._k("retention", kind)

    def all_pattern(self) -> str:
        """SCAN pattern matching every key of this namespace (tests, reset)."""
        return self.prefix + ":*"

    # dispatch (docs/dispatch.md)
    def dispatch_ready(self, project_id: str | None = None) -> str:
        """Ready set: every dispatchable issue, or those of one project."""
        if project_id:
            return self._k("dispatch", "ready", "project", project_id)
        return self._k("dispatch", "ready")

    def dispatch_state(self, issue_id: str) -> str:
        return self._k("dispatch", "issue", issue_id)

    def dispatch_blockers(self, issue_id: str) -> str:
        return self._k("dispatch", "blockers", issue_id)

    def dispatch_blocking(self, issue_id: str) -> str:
        return self._k("dispatch", "blocking", issue_id)

    def dispatch_blocked(self) -> str:
        """Issues whose blocked count is positive, score = when it last became so (ms): the dashboard's list."""
        return self._k("dispatch", "blocked")

    def session_outcomes(self) -> str:
        """Hash outcome -> sessions closed so (every close, in its MULTI: metrics read it)."""
        return self._k("dispatch", "session_outcomes")

    def dispatch_leases(self) -> str:
        return self._k("dispatch", "leases")

    def dispatch_scheduled(self) -> str:
        """Scheduled issues (``notBefore`` in the future when written), score = ``notBefore``."""
        return self._k("dispatch", "scheduled")

    def dispatch_goal_bonus(self) -> str:
        return self._k("dispatch", "goalbonus")

    def dispatch_goal_links(self) -> str:
        return self._k("dispatch", "goal_links")

    def dispatch_project_links(self) -> str:
        return self._k("dispatch", "project_links")

    def dispatch_project_goals(self, project_id: str) -> str:
        return self._k("dispatch", "project_goals", project_id)

    def dispatch_goal_projects(self, goal_id: str) -> str:
        return self._k("dispatch", "goal_projects", goal_id)

    def dispatch_version(self, version_id: str) -> str:
        return self._k("dispatch", "version", version_id)

    def session(self, session_id: str) -> str:
        return self._k("session", session_id)

    def issue_sessions(self, issue_id: str) -> str:
        return self._k("issue", issue_id, "sessions")

    # prompt engine (loop/prompts)
    def template_versions(self, template_id: str) -> str:
        return self._k("template", template_id, "versions")

    def template_reviews(self, template_id: str) -> str:
        return self._k("template", template_id, "reviews")

    def template_review_stats(self, template_id: str) -> str:
        return self._k("template", template_id, "review_stats")

    def version_reviews(self, version_id: str) -> str:
        return self._k("prompt_version", version_id, "reviews")

    def prompts_generation(self) -> str:
        return self._k("prompts", "generation")

    def prompts_seeded(self) -> str:
        return self._k("prompts", "seeded")

    def prompt_improvement(self, template_id: str) -> str:
        return self._k("prompts", "improvement", template_id)

    def prompt_improvement_lock(self, template_id: str) -> str:
        return self._k("prompts", "improvement", template_id, "lock")

    def template_history(self, template_id: str) -> str:
        return self._k("template", template_id, "history")

    def version_experiment(self, version_id: str) -> str:
        return self._k("prompt_version", version_id, "experiment")

    def version_durations(self, version_id: str) -> str:
        return self._k("dispatch", "version", version_id, "durations")

    # dashboard (api/resources/dashboard.py), maintained by IssueIndexes.reindex
    def issues_completed(self) -> str:
        """Live issues with status ``done``, score = completedAt (epoch ms)."""
        return self._k("idx", "issues", "completed")

    def issue_roots(self) -> str:
        """Live root issues (no parent), score = latest activity of the root or its children."""
        return self._k("idx", "issues", "roots")

    def stats_bucket(self, unit: str, stamp: str) -> str:
        """Issue event counters of one UTC ``day`` (``YYYY-MM-DD``) or ``hour`` (``YYYY-MM-DDTHH``)."""
        return self._k("stats", unit, stamp)
