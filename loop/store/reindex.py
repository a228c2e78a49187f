"""Check and rebuild every derived index from the rows (``loop admin check`` / ``loop admin repair``).

The rows are the truth: issue, label, project, goal, relation and signal hashes and each issue's
label set. Everything else that Loop keeps in step with them is derived: the issue bitmaps and the
number -> id string, the project/parent/label zsets, the per-project status counts, the
dashboard zsets, the creation-ordered row indexes, label names, each issue's relation list, the
goals by metric, the fingerprint groups (the issue of each fingerprint's newest signal), and
each :class:`Extension` in ``store.audits`` adds its own (dispatch's ready sets, blocked counts,
blocker maps, goal links and goal bonuses: :func:`loop.dispatch.audit.expect`, registered by
:mod:`loop.runtime`).

:func:`check` computes every derived key from one scan of the rows and lists each difference;
:func:`repair` rewrites exactly the keys that differ (each in its own MULTI) and deletes derived
keys that should not exist. Both scan the whole namespace: maintenance tools, never on a request
path. Repair is safe to run while Loop serves, with one caveat: a write that lands between the
scan and the rewrite of a key it touches can be undone in that key, so run ``check`` after a
repair (and repair again if it reports drift). Sessions and leases are state, not derived:
``check`` reports their inconsistencies, ``repair`` leaves them alone.

    REDIS_URL=redis://... LOOP_NAMESPACE=loop loop admin check | repair
    python -m loop.store.reindex        # the same as ``loop admin repair``
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loop import models
from loop.keys import ID_WIDTH
from loop.models import GOAL_STATUSES, ISSUE_FIELDS, Row
from loop.settings import Settings
from loop.store.issue_indexes import BITMAPS, INDEXED
from loop.store.recount import counters
from loop.store.signals import fingerprint_digest

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: A zset member whose score is not derivable (creation seq, activity): membership is checked,
#: and a missing member is restored with a fresh row seq (at the end of the creation order).
ANY_SCORE: float | None = None


@dataclass
class Rows:
    """Every source row of the namespace, read with one SCAN and pipelined reads."""

    keys: list[str]
    issues: dict[str, Row] = field(default_factory=dict)
    issue_labels: dict[str, set[str]] = field(default_factory=dict)
    relations: list[Row] = field(default_factory=list)
    labels: list[Row] = field(default_factory=list)
    projects: list[Row] = field(default_factory=list)
    goals: list[Row] = field(default_factory=list)

    @classmethod
    def load(cls, store: RedisStore) -> Rows:
        k = store.keys
        rows = cls(keys=list(store.r.scan_iter(match=k.all_pattern(), count=5000)))
        kinds = {"issue": ISSUE_FIELDS, "relation": models.RELATION_FIELDS, "label": models.LABEL_FIELDS,
                 "project": models.PROJECT_FIELDS, "goal": models.GOAL_FIELDS}
        for kind, fields in kinds.items():
            keys = rows.matching(k.row(kind, ""), 3)
            decoded = [models.decode(fields, raw) for raw in _read(store, keys, "hgetall") if raw and "id" in raw]
            if kind == "issue":
                rows.issues = {r["id"]: r for r in decoded if r["number"]}
            else:
                getattr(rows, kind + "s").extend(decoded)
        label_keys = [k.issue_labels(i) for i in rows.issues]
        for iid, members in zip(rows.issues, _read(store, label_keys, "smembers"), strict=True):
            rows.issue_labels[iid] = set(members)
        return rows

    def matching(self, prefix: str, parts: int) -> list[str]:
        """Keys starting with ``prefix`` made of ``parts`` colon-separated parts (ids have no colon)."""
        return [key for key in self.keys if key.startswith(prefix) and key.count(":") == parts - 1]

    def live_issues(self) -> list[Row]:
        return [r for r in self.issues.values() if r["deletedAt"] is None]


def _read(store: RedisStore, keys: list[str], command: str) -> list[Any]:
    """``command`` (a method name, or ``zrange`` = the whole zset with scores) of each key, batched."""
    out: list[Any] = []
    for start in range(0, len(keys), 1000):
        pipe = store.r.pipeline(transaction=False)
        for key in keys[start:start + 1000]:
            if command == "zrange":
                pipe.zrange(key, 0, -1, withscores=True)
            else:
                getattr(pipe, command)(key)
        out.extend(pipe.execute())
    return out


@dataclass
class Expected:
    """What every derived key should hold. ``families``: key prefixes (with their part count)
    whose every key is derived, so one that is not expected here is stale."""

    bits: dict[str, set[int]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float | None]] = field(default_factory=dict)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    #: ``(hash key, field) -> value`` for one derived field of a hash holding other state too.
    fields: dict[tuple[str, str], str | None] = field(default_factory=dict)
    strings: dict[str, bytes] = field(default_factory=dict)
    families: list[tuple[str, int]] = field(default_factory=list)

    def zadd(self, key: str, member: str, score: float | None) -> None:
        self.zsets.setdefault(key, {})[member] = score


def expect_store(store: RedisStore, rows: Rows, exp: Expected) -> None:
    """The store's own derived keys (docs/architecture.md, key schema)."""
    k = store.keys
    ids = bytearray()
    for row in rows.issues.values():
        n = int(row["number"])
        if len(ids) < n * ID_WIDTH:  # zero bytes, as SETRANGE pads (numbers of failed creates)
            ids.extend(bytes(n * ID_WIDTH - len(ids)))
        ids[(n - 1) * ID_WIDTH:n * ID_WIDTH] = row["id"].encode()
    if ids:
        exp.strings[k.issue_ids()] = bytes(ids)
    exp.bits[k.issue_bits()] = set()
    for row in rows.live_issues():
        iid, n = row["id"], int(row["number"])
        exp.bits[k.issue_bits()].add(n)
        for name, fld in BITMAPS.items():
            if row[fld] is not None:
                exp.bits.setdefault(k.issue_bits(name, str(row[fld])), set()).add(n)
        for name, fld in INDEXED.items():
            if row[fld]:
                exp.zadd(k.issue_index(name, str(row[fld])), iid, n)
        for lid in rows.issue_labels.get(iid, ()):
            exp.zadd(k.issue_index("label", lid), iid, n)
        if row["status"] == "done" and row["completedAt"] is not None:
            exp.zadd(k.issues_completed(), iid, row["completedAt"])
        if not row["parentId"]:
            exp.zadd(k.issue_roots(), iid, ANY_SCORE)
    exp.zsets.setdefault(k.issues_completed(), {})
    exp.zsets.setdefault(k.issue_roots(), {})
    # The list counters (per-project status/type combinations, signal filter combinations).
    for name, counter in counters(store)[0].items():
        exp.hashes[k.counts(name)] = {f: str(n) for f, n in counter.items() if n}
    for index, live in (("labels", rows.labels), ("projects", rows.projects), ("goals", rows.goals)):
        exp.zsets[k.index(index)] = {r["id"]: ANY_SCORE for r in live if r["deletedAt"] is None}
    # Goals by status (GET /api/goals?status=), scored like the goals index (creation seq).
    goal_seq = dict(store.r.zrange(k.index("goals"), 0, -1, withscores=True))
    for status in GOAL_STATUSES:
        exp.zsets.setdefault(k.status_index("goals", status), {})
    for goal in rows.goals:
        if goal["deletedAt"] is None:
            exp.zadd(k.status_index("goals", goal["status"]), goal["id"], goal_seq.get(goal["id"], ANY_SCORE))
    exp.hashes[k.label_names()] = {r["name"]: r["id"] for r in rows.labels}
    for rel in rows.relations:
        exp.zadd(k.issue_relations(rel["issueId"]), rel["id"], ANY_SCORE)
        exp.zadd(k.issue_relations_in(rel["relatedIssueId"]), rel["id"], ANY_SCORE)
    exp.families += [(k.issue_bits() + ":", 5), (k.issue_index("project", ""), 5),
                     (k.issue_index("parent", ""), 5), (k.issue_index("label", ""), 5)]
    expect_goal_metrics(store, rows, exp)
    expect_signal_groups(store, rows, exp)


def expect_goal_metrics(store: RedisStore, rows: Rows, exp: Expected) -> None:
    """``P:goals:metric:<metric>``: the live goals measured by each metric. A metric may hold colons,
    so stale sets are found by prefix (expected empty, which repair deletes), not by part count."""
    prefix = store.keys.goals_by_metric("")
    for key in rows.keys:
        if key.startswith(prefix):
            exp.sets.setdefault(key, set())
    for goal in rows.goals:
        if goal["deletedAt"] is None and goal["metric"]:
            exp.sets.setdefault(store.keys.goals_by_metric(goal["metric"]), set()).add(goal["id"])


def expect_signal_groups(store: RedisStore, rows: Rows, exp: Expected) -> None:
    """``P:signal:group:<digest>``: the issue of the fingerprint's newest signal (the highest issue
    number among its signals: a group only ever moves to a newer issue). A group naming an issue
    retention has purged (with its signals) is kept as it is: harmless, the next signal of the
    fingerprint opens a new issue."""
    k = store.keys
    signal_keys = rows.matching(k.row("signal", ""), 3)
    newest: dict[str, tuple[int, str]] = {}
    for start in range(0, len(signal_keys), 1000):
        pipe = store.r.pipeline(transaction=False)
        for key in signal_keys[start:start + 1000]:
            pipe.hmget(key, ["fingerprint", "issueId"])
        for fingerprint, issue_id in pipe.execute():
            issue = rows.issues.get(issue_id) if fingerprint and issue_id else None
            if issue is not None:
                key = k.signal_group(fingerprint_digest(fingerprint))
                newest[key] = max(newest.get(key, (0, "")), (int(issue["number"]), issue["id"]))
    present = rows.matching(k.signal_group(""), 4)
    for key, current in zip(present, _read(store, present, "get"), strict=True):
        if current is not None and current not in rows.issues:
            exp.strings[key] = current.encode()
    for key, (_, issue_id) in newest.items():
        exp.strings.setdefault(key, issue_id.encode())
    exp.families.append((k.signal_group(""), 4))


def expected(store: RedisStore, rows: Rows | None = None) -> Expected:
    rows = rows or Rows.load(store)
    exp = Expected()
    expect_store(store, rows, exp)
    for extension in store.audits:
        extension.expect(store, rows, exp)
    return exp


def _bits_of(value: bytes | None) -> set[int]:
    return {i * 8 + b for i, byte in enumerate(value or b"") for b in range(8) if byte & (0x80 >> b)}


def _bits_value(numbers: set[int]) -> bytes:
    buf = bytearray(max(numbers) // 8 + 1 if numbers else 0)
    for n in numbers:
        buf[n // 8] |= 0x80 >> (n % 8)
    return bytes(buf)


@dataclass(frozen=True)
class Extension:
    """A subsystem's part of the audit: ``expect`` adds the derived keys it keeps to the expected
    state; ``audit`` lists inconsistencies of its state (not derived, so never repaired)."""

    expect: Callable[[RedisStore, Rows, Expected], None]
    audit: Callable[[RedisStore, list[str]], list[str]]


@dataclass
class Drift:
    """One derived key (or hash field) that differs from the rows: ``fix`` rewrites it."""

    key: str
    problem: str
    kind: str
    field: str | None = None


def diff(store: RedisStore, exp: Expected, rows: Rows) -> list[Drift]:
    r, out = store.r, []
    for key, numbers in exp.bits.items():
        bits = _bits_of(_raw_get(store, key))
        if bits != numbers:
            out.append(Drift(key, f"bitmap {key}: missing bits {sorted(numbers - bits)[:10]}, "
                                  f"extra bits {sorted(bits - numbers)[:10]}", "bits"))
    for key, ids in exp.strings.items():
        got = _raw_get(store, key) or b""
        # Zero bytes are numbers no row names: whatever they hold is not drift.
        if len(got) < len(ids.rstrip(b"\0")) or any(w and w != h for w, h in zip(ids, got, strict=False)):
            out.append(Drift(key, f"{key} differs from the issue rows", "string"))
    zsets = _read(store, list(exp.zsets), "zrange")
    for (key, members), have_list in zip(exp.zsets.items(), zsets, strict=True):
        scores: dict[str, float] = dict(have_list)
        missing, extra = set(members) - set(scores), set(scores) - set(members)
        wrong = {m for m, s in members.items() if s is not None and m in scores and abs(scores[m] - s) > 1e-6}
        if missing or extra or wrong:
            out.append(Drift(key, f"zset {key}: missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}, "
                                  f"wrong score {sorted(wrong)[:5]}", "zset"))
    for (key, mapping), raw in zip(exp.hashes.items(), _read(store, list(exp.hashes), "hgetall"), strict=True):
        have = {f: v for f, v in raw.items() if v != "0"}
        if have != mapping:
            bad = sorted(set(mapping.items()) ^ set(have.items()))[:5]
            out.append(Drift(key, f"hash {key}: differs in {bad}", "hash"))
    for (key, want_set), members_now in zip(exp.sets.items(), _read(store, list(exp.sets), "smembers"), strict=True):
        now = set(members_now)
        if now != want_set:
            out.append(Drift(key, f"set {key}: missing {sorted(want_set - now)[:5]}, "
                                  f"extra {sorted(now - want_set)[:5]}", "set"))
    pipe = r.pipeline(transaction=False)
    for key, fld in exp.fields:
        pipe.hget(key, fld)
    for ((key, fld), want_value), have_value in zip(exp.fields.items(), pipe.execute(), strict=True):
        if have_value != want_value:
            out.append(Drift(key, f"{key} field {fld} is {have_value}, expected {want_value}", "field", fld))
    known = {*exp.bits, *exp.zsets, *exp.hashes, *exp.sets, *exp.strings}
    for prefix, parts in exp.families:
        for key in rows.matching(prefix, parts):
            if key not in known and not (r.type(key) == "string" and r.bitcount(key) == 0):
                out.append(Drift(key, f"{key} should not exist (nothing in the rows implies it)", "stale"))
    return out


def _raw_get(store: RedisStore, key: str) -> bytes | None:
    """A string's bytes (the store's client decodes replies as UTF-8; bitmaps are not text)."""
    value: bytes | None = store.r.execute_command("GET", key, NEVER_DECODE=True)
    return value


def fix(store: RedisStore, exp: Expected, drift: Drift) -> None:
    """Rewrite one drifted key from ``exp`` in one MULTI (zset scores that cannot be derived are
    kept for surviving members; restored members get a fresh row seq)."""
    r, key = store.r, drift.key
    if drift.kind == "field":
        assert drift.field is not None
        value = exp.fields[(key, drift.field)]
        if value is None:
            r.hdel(key, drift.field)
        else:
            r.hset(key, drift.field, value)
        return
    pipe = r.pipeline(transaction=True)
    pipe.delete(key)
    if drift.kind == "bits" and exp.bits[key]:
        pipe.set(key, _bits_value(exp.bits[key]))
    elif drift.kind == "string":
        pipe.set(key, exp.strings[key])
    elif drift.kind == "zset" and exp.zsets[key]:
        kept = dict(r.zrange(key, 0, -1, withscores=True))
        pipe.zadd(key, {m: s if s is not None else kept.get(m) or float(store.next_seq())
                        for m, s in exp.zsets[key].items()})
    elif drift.kind == "hash" and exp.hashes[key]:
        pipe.hset(key, mapping=exp.hashes[key])
    elif drift.kind == "set" and exp.sets[key]:
        pipe.sadd(key, *exp.sets[key])
    pipe.execute()


def check(store: RedisStore) -> list[str]:
    """Every difference between the derived indexes and the rows (empty: consistent)."""
    rows = Rows.load(store)
    problems = [d.problem for d in diff(store, expected(store, rows), rows)]
    for extension in store.audits:
        problems += extension.audit(store, rows.keys)
    return problems


def repair(store: RedisStore) -> list[str]:
    """Rewrite every drifted derived key; returns what was fixed."""
    rows = Rows.load(store)
    exp = expected(store, rows)
    drifts = diff(store, exp, rows)
    for drift in drifts:
        fix(store, exp, drift)
    return [d.problem for d in drifts]


def rebuild(store: RedisStore) -> int:
    """Repair everything; returns the number of issue rows seen (kept for older callers)."""
    repair(store)
    return len(Rows.load(store).issues)


def rebuild_goal_status(store: RedisStore) -> int:
    """Repair (the goal status indexes among the rest); returns the number of live goals."""
    repair(store)
    return int(store.r.zcard(store.keys.index("goals")))


def main(graph: Callable[[Settings], RedisStore]) -> int:
    """``python -m loop.store.reindex``: repair the namespace of the environment's settings."""
    settings = Settings.from_env()
    fixed = repair(graph(settings))
    print(f"repaired {len(fixed)} derived keys of namespace {settings.namespace!r}")
    return 0


if __name__ == "__main__":
    # The entry point (not a dependency of this module) builds the whole graph, dispatch's keys too.
    from loop.runtime import from_settings

    sys.exit(main(from_settings))
