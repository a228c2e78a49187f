"""Memory per typical issue on a 1M backlog, at the configuration Loop recommends (issue 12).

A private redis-server started with ``hash-max-listpack-value 1024`` (docs/operations.md) gets a
backlog of ``backlog`` issues (default 1,000,000) seeded straight into the store (the layout
``Issues.create`` writes, typical data: ~60-character title, ~400-character description, type,
status, priority, one of 10 projects). Then ``n`` more issues (default 3,000) take the real code
paths with the issue's typical extras: ``issues.create`` (status todo), two labels attached
(``attach_label``, of 20), one ``related`` relation to the previous one (``relations.create``), one
claim (``dispatch.next``) closed by a PATCH to ``done`` (one closed session). The figure is the
``used_memory`` delta per issue of that second step: what a typical issue costs once the indexes
have their size at 1M. The seeded backlog's own ``used_memory`` per issue is reported beside it
(issue hashes and indexes only: no labels, relations or sessions).

Then the floor of any layout: the same ``n`` issues, their data read back from what Loop wrote,
each folded into ONE listpack hash (the issue's fields, its label ids as one field, its relation
and its closed session each packed into one field without the fields the key or the issue already
name, the incoming half of the relation on the related issue), in a scratch namespace of the same
Redis; plus the two zset entries a root issue of a project keeps and that no bitmap replaces (its
project's list, scored by number, and the dashboard's roots, scored by activity), at their cost
per entry in this backlog's zsets. What that sum leaves above the target is the data itself.

Options: ``backlog`` (default 1000000), ``n`` (default 3000).
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

from benchmarks.foundation import _group, _projects, _text
from benchmarks.harness import Bench, private_redis, seed_issues
from loop.clock import SystemClock
from loop.connection import AnyRedis
from loop.keys import Keys
from loop.models import Row
from loop.runtime import build
from loop.settings import Settings
from loop.store import connect
from loop.tunables import REDIS_HASH_VALUE_BYTES

TYPES = {"task": 60, "signal": 15, "plan": 10, "hypothesis": 10, "monitor": 5}
STATUSES = {"triage": 5, "backlog": 30, "todo": 20, "done": 40, "canceled": 5}


def typical(rng: random.Random, projects: list[str]) -> Row:
    """Title ~60 characters, description ~400, type, status, priority, a project."""
    return {"title": _text(rng, 60), "description": _text(rng, 400),
            "type": rng.choices(list(TYPES), list(TYPES.values()))[0],
            "status": rng.choices(list(STATUSES), list(STATUSES.values()))[0],
            "priority": rng.randint(0, 4), "projectId": rng.choice(projects)}


def run(bench: Bench) -> None:
    backlog = int(bench.options.get("backlog") or 1_000_000)
    n = int(bench.options.get("n") or 3000)
    with private_redis(None, "--hash-max-listpack-value", str(REDIS_HASH_VALUE_BYTES)) as url:
        client = connect(url)
        store = build(client, Settings(namespace="mem"), SystemClock())
        projects = _projects(store)
        rng = random.Random(12)
        base = int(client.info("memory")["used_memory"])
        t0 = time.perf_counter()
        for start in range(0, backlog, 10_000):
            seed_issues(store, [typical(rng, projects) for _ in range(min(10_000, backlog - start))])
        seeded = int(client.info("memory")["used_memory"])
        print(f"  seeded {backlog:,} typical issues in {time.perf_counter() - t0:.0f}s: "
              f"{(seeded - base) / max(1, backlog):,.0f} B/issue (hash and indexes only)", flush=True)
        labels = [store.labels.ensure(f"label-{i}", "#336699")["id"] for i in range(20)]
        # Keys every issue shares (indexes, counters, bitmaps): their growth is part of an issue's cost.
        per_issue_key = _ID_KEY
        shared = [k for k in client.scan_iter(match=store.keys.all_pattern(), count=10_000)
                  if not per_issue_key.search(k)]
        keys_before = len(shared) + backlog
        shared_before = {k: int(client.memory_usage(k, samples=0) or 0) for k in shared}
        before = int(client.info("memory")["used_memory"])
        ids: list[str] = []
        previous: str | None = None
        for _ in range(n):
            issue = store.issues.create({**typical(rng, projects), "status": "todo"})
            iid = issue["id"]
            ids.append(iid)
            for label in rng.sample(labels, 2):
                store.issues.attach_label(iid, label)
            if previous is not None:
                store.relations.create(iid, "related", previous)
            previous = iid
            claim: Any = store.dispatch.next("bench")
            if claim is not None:
                store.issues.update(claim["issue"]["id"], {"status": "done"})
        after = int(client.info("memory")["used_memory"])
        groups: dict[str, list[int]] = {}
        new_keys = 0
        for key in client.scan_iter(match=store.keys.all_pattern(), count=10_000):
            if key in shared_before:
                grew = int(client.memory_usage(key, samples=0) or 0) - shared_before[key]
                g = groups.setdefault("shared: " + _group(key, store.keys.prefix + ":"), [0, 0])
                g[0] += 1
                g[1] += grew
            elif per_issue_key.search(key) and not _seeded(key, ids, store.keys.prefix):
                continue
            else:
                new_keys += 1
                g = groups.setdefault(_group(key, store.keys.prefix + ":"), [0, 0])
                g[0] += 1
                g[1] += int(client.memory_usage(key, samples=0) or 0)
        keyspace = int(client.dbsize()) - keys_before
        accounted = sum(size for _, size in groups.values()) / n
        per = (after - before) / n
        print(f"  {n:,} typical issues (2 labels, 1 relation, 1 closed session) on top: MEMORY USAGE "
              f"{accounted:,.0f} B/issue over {keyspace / n:.1f} new keys/issue (+ ~{16 * keyspace / n:.0f} B "
              f"of keyspace buckets); used_memory delta {per:,.0f} B/issue (includes hash-table doublings)",
              flush=True)
        for g, (count, size) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
            if abs(size) / n >= 1:
                print(f"       {g:<52} {count:>7} keys {size / n:>8.1f} B/issue", flush=True)
        per = accounted + 16 * keyspace / n
        bench.data["memory_1m"] = {"backlog": backlog, "seeded_per_issue": (seeded - base) / max(1, backlog),
                                   "typical_per_issue": per, "used_memory_delta_per_issue": (after - before) / n,
                                   "groups": groups, "n": n}
        bench.ratio(f"memory per typical issue at {backlog:,} (labels, relation, session)", per, "<= 1229 B",
                    per <= 1229, "MEMORY USAGE of its keys and of the shared keys' growth, + 16 B per key")
        floor = _floor(client, store.keys, ids)
        print(f"  floor of any layout (the same {n:,} issues, each one listpack hash + its project and roots "
              f"zset entries): {floor['hash']:,.0f} B hash + {floor['entries']:,.0f} B of zset entries + 16 B = "
              f"{floor['total']:,.0f} B/issue; title and description alone {floor['text']:,.0f} B", flush=True)
        bench.data["memory_1m"]["floor"] = floor


def _floor(client: AnyRedis, keys: Keys, ids: list[str]) -> dict[str, float]:
    """MEMORY USAGE per issue of ``ids`` folded into one hash each (module docstring), written in a
    scratch namespace and deleted after, plus a project and a roots zset entry at this backlog's cost."""
    # A scratch namespace as long as the real one, so that its keys cost what the real ones do.
    scratch = Keys(("x" if keys.namespace[0] != "x" else "y") * len(keys.namespace))
    pipe = client.pipeline(transaction=False)
    for iid in ids:
        pipe.hgetall(keys.issue(iid))
        pipe.smembers(keys.issue_labels(iid))
        pipe.zrange(keys.issue_relations(iid), 0, -1)
        pipe.zrange(keys.issue_sessions(iid), 0, -1)
    replies = pipe.execute()
    folded: dict[str, dict[str, str]] = {}
    text = 0
    for i, iid in enumerate(ids):
        row, labels, relations, sessions = replies[4 * i:4 * i + 4]
        text += len(row.get("title", "")) + len(row.get("description", ""))
        one = folded.setdefault(iid, {})
        one.update(row)
        if labels:
            one["labels"] = " ".join(sorted(labels))
        for rid in relations:
            rel = client.hgetall(keys.row("relation", rid))
            one["r:" + rid] = f"{rel['type']} {rel['relatedIssueId']} {rel['createdAt']}"
            folded.setdefault(rel["relatedIssueId"], {})["ri:" + rid] = f"{rel['type']} {iid} {rel['createdAt']}"
        for sid in sessions:
            ses = client.hgetall(keys.session(sid))
            one["s:" + sid] = "|".join(v for f, v in ses.items() if f not in ("id", "issueId"))
    sizes: list[int] = []
    try:
        for iid, fields in folded.items():
            client.hset(scratch.issue(iid), mapping=fields)
        sizes = [int(client.memory_usage(scratch.issue(iid), samples=0) or 0) for iid in ids]
    finally:
        written = [scratch.issue(iid) for iid in folded]
        for start in range(0, len(written), 1000):
            client.delete(*written[start:start + 1000])
    entries = 0.0
    for zsets in (list(client.scan_iter(match=keys.issue_index("project", "*"), count=1000)), [keys.issue_roots()]):
        members = sum(int(client.zcard(key)) for key in zsets)
        entries += sum(int(client.memory_usage(key, samples=0) or 0) for key in zsets) / max(1, members)
    per_hash = sum(sizes) / max(1, len(sizes))
    return {"hash": per_hash, "entries": entries, "total": per_hash + entries + 16, "text": text / max(1, len(ids))}


#: A key of one issue (its hash, its label set, sessions, relations, dispatch state): not shared.
_ID_KEY = re.compile(r":(issue|dispatch:issue):[a-z0-9]{24}(:|$)")


def _seeded(key: str, ids: list[str], prefix: str) -> bool:
    """Whether a per-issue key belongs to the issues created in the measured step."""
    m = _ID_KEY.search(key)
    return m is not None and key[m.end(1) + 1:m.end(1) + 25] in _MEASURED.setdefault(id(ids), set(ids))


_MEASURED: dict[int, set[str]] = {}
