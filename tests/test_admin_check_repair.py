"""``loop admin check`` / ``loop admin repair`` (issue 10.9): every derived index is audited against
the rows; each kind of corruption is reported; repair rewrites it, after which the check is clean
and lists and dispatch order are exactly what they were before the corruption."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from loop.cli import main
from loop.store.reindex import check, repair


@pytest.fixture
def render_prompts() -> bool:
    return False  # these tests claim without a prompt (dispatch renders none)


@pytest.fixture
def world(store, clock):
    """Projects, an active goal, labels, parents and children, blocking, a claim and a done issue."""
    p, q = store.projects.create({"name": "P"}), store.projects.create({"name": "Q"})
    goal = store.goals.create({"title": "G", "projectId": p["id"]})
    store.projects.update(q["id"], {"goalId": goal["id"]})
    bug = store.labels.create({"name": "bug", "color": "red"})
    made = []
    for n in range(12):
        clock.advance(3600)
        made.append(store.issues.create({
            "title": f"i{n}", "type": ("task", "signal", "plan")[n % 3], "status": ("todo", "todo", "backlog")[n % 3],
            "priority": n % 5, "projectId": (p["id"], q["id"], None)[n % 3],
            "labelIds": [bug["id"]] if n % 2 else []}))
    child = store.issues.create({"title": "child", "type": "task", "status": "todo", "parentId": made[2]["id"]})
    store.relations.create(made[0]["id"], "blocks", made[1]["id"])
    store.relations.create(made[4]["id"], "blocked_by", made[3]["id"])
    store.relations.create(made[5]["id"], "related", made[6]["id"])
    store.issues.update(made[6]["id"], {"status": "done"})
    store.issues.delete(made[7]["id"])
    claim = store.dispatch.claim("agent")
    assert claim is not None
    return {"issues": made, "child": child, "label": bug, "projects": (p, q)}


def _order(store):
    items, total = store.dispatch.queue(None, 100, 0)
    lists = [store.issues.list(f, 100, 0) for f in ({}, {"status": ["todo"]}, {"type": ["signal"]})]
    return [(i["issue"]["id"], i["score"]) for i in items], total, lists


def test_a_consistent_store_checks_clean(store, world):
    assert check(store) == []


def test_each_corruption_is_reported_and_repair_restores_lists_and_dispatch_order(store, world):
    k, r = store.keys, store.r
    before = _order(store)
    head = r.zrevrange(k.dispatch_ready(), 0, 0)[0]
    victim = next(i for i in world["issues"] if r.getbit(k.issue_bits("status", "todo"), i["number"]))
    blocked_id = world["issues"][1]["id"]
    # 1. delete a ready-set member
    r.zrem(k.dispatch_ready(), head)
    # 2. bump a blocked count
    r.hincrby(k.dispatch_state(blocked_id), "blocked", 1)
    # 3. drop a bitmap bit
    r.setbit(k.issue_bits("status", "todo"), victim["number"], 0)
    # 4. a phantom label member (a deleted issue)
    r.zadd(k.issue_index("label", world["label"]["id"]), {world["issues"][7]["id"]: 8})
    # 5. more: a project's status count, a stale project ready set, a goal bonus
    r.hincrby(k.counts("project_status"), f"{world['projects'][0]['id']}|todo", 5)
    r.zadd(k.dispatch_ready("no-such-project"), {"x|no-such-project": 1.0})
    r.hdel(k.dispatch_goal_bonus(), world["projects"][1]["id"])
    problems = check(store)
    joined = "\n".join(problems)
    for key in (k.dispatch_ready(), k.dispatch_state(blocked_id), k.issue_bits("status", "todo"),
                k.issue_index("label", world["label"]["id"]), k.counts("project_status"),
                k.dispatch_ready("no-such-project"), k.dispatch_goal_bonus()):
        assert key in joined, (key, problems)
    assert head in joined and world["issues"][7]["id"] in joined
    fixed = repair(store)
    assert len(fixed) == len(problems)
    assert check(store) == []
    assert _order(store) == before
    assert not r.exists(k.dispatch_ready("no-such-project"))


def test_repair_rebuilds_the_issue_bitmaps_and_id_string_from_nothing(store, world):
    k, r = store.keys, store.r
    before = _order(store)
    r.delete(*r.scan_iter(match=k.issue_bits() + "*"), k.issue_ids(), k.dispatch_ready())
    assert store.issues.list({}, 10, 0) == ([], 0)
    assert check(store) != []
    repair(store)
    assert check(store) == [] and _order(store) == before


def test_the_cli_exits_1_on_drift_and_repair_makes_it_exit_0(store, world, settings, monkeypatch):
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("LOOP_NAMESPACE", settings.namespace)
    monkeypatch.delenv("LOOP_API_KEY", raising=False)
    runner = CliRunner()
    clean = runner.invoke(main, ["admin", "check", "--json"])
    assert clean.exit_code == 0, clean.output
    store.r.hincrby(store.keys.dispatch_state(world["issues"][1]["id"]), "blocked", 3)
    drift = runner.invoke(main, ["admin", "check", "--plain"])
    assert drift.exit_code == 1 and "blocked" in drift.output
    fixed = runner.invoke(main, ["admin", "repair", "--plain"])
    assert fixed.exit_code == 0, fixed.output
    assert "Repaired 1 derived key(s); 0 problem(s) remain." in fixed.output
    assert runner.invoke(main, ["admin", "check"]).exit_code == 0


def test_the_list_counters_are_audited_and_repaired_too(store, world):
    k, r = store.keys, store.r
    project = world["projects"][0]["id"]
    field = f"{project}|todo|task"
    before = r.hget(k.counts("project_status_type"), field)
    r.hincrby(k.counts("project_status_type"), field, 3)
    r.hincrby(k.counts("project_type"), f"{project}|task", -1)
    problems = check(store)
    assert any("project_status_type" in p for p in problems) and any("project_type" in p for p in problems)
    repair(store)
    assert check(store) == []
    assert r.hget(k.counts("project_status_type"), field) == before


def test_a_store_purged_by_retention_checks_clean(store, world, settings, clock):
    from dataclasses import replace

    from workers import retention

    store.settings = replace(settings, deleted_issue_retention_seconds=60, session_retention_seconds=60)
    clock.advance(3600 * 24)
    purged = retention.purge(store)
    assert purged["issues"] == 1  # the world's deleted issue, with its side keys and index entries
    assert check(store) == []


# ------------------------------------------------- issue 14: goals by metric, fingerprint groups
def _signal(store, fingerprint, severity="low"):
    data = {"source": "sentry", "type": "error", "severity": severity, "payload": {"n": 1},
            "fingerprint": fingerprint}
    return store.signals.create(data, store.signals.issue_data("sentry", severity, {"n": 1}, "[sentry] error"))


def test_goal_metric_sets_are_audited_and_one_repair_rebuilds_them(store, world):
    k, r = store.keys, store.r
    lat = store.goals.create({"title": "Latency", "metric": "p95:ms"})
    also = store.goals.create({"title": "Latency too", "metric": "p95:ms"})
    gone = store.goals.create({"title": "Gone", "metric": "signups"})
    store.goals.delete(gone["id"])
    assert check(store) == []
    # Goals created before the metric sets existed: no set at all. Plus a stray member and a stale set.
    r.delete(k.goals_by_metric("p95:ms"))
    r.sadd(k.goals_by_metric("signups"), gone["id"])
    r.sadd(k.goals_by_metric("old:metric"), lat["id"])
    problems = check(store)
    for metric in ("p95:ms", "signups", "old:metric"):
        assert any(k.goals_by_metric(metric) in p for p in problems), (metric, problems)
    assert len(repair(store)) == 3
    assert check(store) == []
    assert store.goals.by_metric("p95:ms") == sorted([lat["id"], also["id"]])
    assert not r.exists(k.goals_by_metric("signups")) and not r.exists(k.goals_by_metric("old:metric"))


def test_fingerprint_groups_are_audited_and_repair_points_them_at_the_newest_issue(store, world):
    from loop.store.signals import fingerprint_digest

    k, r = store.keys, store.r
    group = lambda fp: k.signal_group(fingerprint_digest(fp))  # noqa: E731
    a = _signal(store, "fp:a").issue
    assert _signal(store, "fp:a").grouped
    old_b = _signal(store, "fp:b").issue
    store.issues.update(old_b["id"], {"status": "done"})
    new_b = _signal(store, "fp:b").issue  # a recurrence: the group moved to the new issue
    assert new_b["id"] != old_b["id"]
    assert check(store) == []
    r.delete(group("fp:a"))                       # lost: the next signal would open a second issue
    r.set(group("fp:b"), old_b["id"])             # pointing back at the closed issue
    r.set(group("fp:nobody"), a["id"])            # no signal has this fingerprint
    problems = check(store)
    for fp in ("fp:a", "fp:b", "fp:nobody"):
        assert any(group(fp) in p for p in problems), (fp, problems)
    assert len(repair(store)) == 3
    assert check(store) == []
    assert (r.get(group("fp:a")), r.get(group("fp:b")), r.exists(group("fp:nobody"))) == (a["id"], new_b["id"], 0)
    joined = _signal(store, "fp:a")
    assert joined.grouped and joined.issue["id"] == a["id"] and joined.issue["signalCount"] == 3


def test_a_group_whose_issue_retention_purged_checks_clean(store, world, settings, clock):
    from dataclasses import replace

    from loop.store.signals import fingerprint_digest
    from workers import retention

    issue = _signal(store, "fp:purged").issue
    store.issues.delete(issue["id"])
    store.settings = replace(settings, deleted_issue_retention_seconds=60, session_retention_seconds=60)
    clock.advance(3600 * 24)
    assert retention.purge(store)["issues"] == 2
    assert store.r.get(store.keys.signal_group(fingerprint_digest("fp:purged"))) == issue["id"]
    assert check(store) == []
    fresh = _signal(store, "fp:purged")
    assert not fresh.grouped and fresh.issue["id"] != issue["id"]
