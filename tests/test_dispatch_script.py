"""The Lua claim itself: declared keys only, survives SCRIPT FLUSH, drops stale entries, retries."""

from __future__ import annotations

from importlib import resources

from loop.dispatch.audit import audit
from loop.dispatch.scoring import member
from loop.scripts import body as script_body
from tests.redis_server import monitored

NAMES = ("dispatch_claim", "dispatch_rescore", "dispatch_enter")
#: Every script: an issue create runs issue_new.lua, or queues issue_create.lua and stats_count.lua.
ALL = tuple(sorted(f.name[:-4] for f in resources.files("loop").joinpath("lua").iterdir() if f.name.endswith(".lua")))


def _seed(store):
    project = store.projects.create({"name": "P"})
    store.goals.create({"title": "G", "projectId": project["id"]})
    a = store.issues.create({"title": "a", "type": "task", "status": "todo", "projectId": project["id"]})
    b = store.issues.create({"title": "b", "type": "signal", "status": "todo", "priority": 1})
    c = store.issues.create({"title": "c", "type": "task", "status": "todo"})
    store.relations.create(c["id"], "blocked_by", a["id"])
    return project, a, b, c


def test_the_claim_still_works_after_script_flush(private_store):
    store = private_store
    _seed(store)
    assert store.dispatch.claim("x") is not None
    store.r.script_flush()
    assert store.r.script_exists(store.scripts["dispatch_claim"].sha) == [False]
    assert store.dispatch.claim("x") is not None
    store.r.script_flush()
    goal = store.goals.create({"title": "G2", "projectId": "elsewhere"})  # rescore script inside MULTI
    store.goals.update(goal["id"], {"status": "achieved"})
    assert audit(store) == []


def test_every_key_the_scripts_touch_is_declared_in_keys(private_store):
    store = private_store
    project, a, *_ = _seed(store)
    other = store.projects.create({"name": "P2"})
    store.issues.create({"title": "d", "type": "task", "status": "todo", "projectId": other["id"]})
    label = store.labels.create({"name": "L"})

    def work():
        store.dispatch.claim("x", project["id"])
        store.dispatch.claim("x")
        store.goals.create({"title": "G3", "projectId": other["id"]})  # rescores P2's ready issue
        store.issues.create({"title": "e", "type": "task", "status": "todo", "projectId": other["id"]})  # issue_new
        # A label is a plain command: the MULTI path, each script on its own (enters the ready sets).
        store.issues.create({"title": "f", "type": "task", "status": "todo", "projectId": other["id"],
                             "labelIds": [label["id"]]})
        # A claim of this process, re-opened with its token: issue_update.lua (it includes issue_fenced_read).
        body = store.dispatch.next("x", other["id"])
        store.issues.update(body["issue"]["id"], {"status": "todo"}, check=store.dispatch.fence(body["claim"]["token"]))

    lines = monitored(store.r, work)
    prefix = store.keys.prefix + ":"
    declared: set[str] = set()
    checked: list[str] = []
    scripts: set[str] = set()
    for cmd in lines:
        args = cmd["command"].split()  # redis-py unquotes MONITOR lines; no argument here has spaces
        name = args[0].upper()
        if name == "EVALSHA":
            declared = set(args[3:3 + int(args[2])])
            scripts.add(next(n for n in ALL if store.scripts[n].sha == args[1]))
        elif name == "EVAL":  # the body has spaces: its keys are the prefixed words after it
            declared = {a for a in args if a.startswith(prefix)}
            scripts.add(next(n for n in ALL if script_body(n).split("\n")[0] in cmd["command"]))
            assert all(k.startswith(prefix) for k in declared), "a KEYS entry lacks the namespace hash tag"
        elif cmd.get("client_type") == "lua":
            touched = {x for x in args[1:] if x.startswith(prefix)}
            assert touched <= declared, f"{args[0]} touched undeclared {touched - declared}"
            checked.append(name)
    assert {"ZREVRANGE", "HSET", "ZADD", "HINCRBY", "ZINCRBY"} <= set(checked)
    assert scripts >= {*NAMES, "issue_create", "stats_count", "issue_new", "issue_update", "steps"}


def test_stale_ready_entries_are_dropped_by_the_claim(store):
    stale = store.issues.create({"title": "stale", "type": "signal", "status": "backlog", "priority": 1})
    good = store.issues.create({"title": "good", "type": "task", "status": "todo"})
    store.r.zadd(store.keys.dispatch_ready(), {member(stale["id"], None): 1e9})
    claim = store.dispatch.claim("x")
    assert claim.issue["id"] == good["id"]
    assert store.r.zcard(store.keys.dispatch_ready()) == 0
    assert store.issues.get(stale["id"])["status"] == "backlog"


def test_candidates_taken_meanwhile_make_the_script_return_fresh_ones(store):
    issue = store.issues.create({"title": "only", "type": "task", "status": "todo"})
    claim = store.dispatch.claimer.claim("x", None, members=[member("gone1", None), member("gone2", None)])
    assert claim is not None and claim.issue["id"] == issue["id"]
    assert store.dispatch.claimer.claim("x", None, members=[member("gone", None)]) is None


def test_a_claim_updates_the_issue_indexes_exactly_as_a_status_patch_would(store, clock):
    project = store.projects.create({"name": "P"})
    root = store.issues.create({"title": "root", "type": "plan", "status": "backlog"})
    fields = {"type": "task", "status": "todo", "projectId": project["id"], "priority": 2}
    claimed, patched = [], []
    for group, title in ((claimed, "x"), (patched, "y")):
        for extra in ({}, {"parentId": root["id"]}):
            clock.advance(1)  # distinct ages: x issues outrank y issues
            group.append(store.issues.create({"title": title, **fields, **extra}))
    clock.advance(3600)
    for x in claimed:
        assert store.dispatch.claimer.claim("x", None, members=[member(x["id"], project["id"])]).issue["id"] == x["id"]
    for y in patched:
        store.issues.update(y["id"], {"status": "in_progress", "agentSessionId": "s"})
    r = store.r
    zsets = [key for key in r.scan_iter(match=store.keys.all_pattern(), count=1000) if r.type(key) == "zset"]
    bitmaps = list(r.scan_iter(match=store.keys.issue_bits() + "*", count=1000))
    assert store.keys.issue_bits("status", "in_progress") in bitmaps
    for x, y in zip(claimed, patched, strict=True):
        for key in zsets:
            sx, sy = r.zscore(key, x["id"]), r.zscore(key, y["id"])
            assert (sx is None) == (sy is None), key
        for key in bitmaps:
            assert r.getbit(key, x["number"]) == r.getbit(key, y["number"]), key
        assert r.hget(store.keys.issue(x["id"]), "updatedAt") == r.hget(store.keys.issue(y["id"]), "updatedAt")
    assert r.zscore(store.keys.issue_roots(), root["id"]) == clock.now_ms()
    assert r.zscore(store.keys.issue_roots(), claimed[0]["id"]) == clock.now_ms()
    assert store.issues.counts_by_project(project["id"]) == {"in_progress": 4}
    assert r.hgetall(store.keys.counts("project_status_type")) == {
        f"{project['id']}|todo|task": "0", f"{project['id']}|in_progress|task": "4"}


class _KeyRecorder:
    """Stands in for a pipeline: records every key ``IssueIndexes.reindex`` would write."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __getattr__(self, command: str):
        return lambda key, *args, **kwargs: self.keys.add(key)


def test_the_claim_script_is_given_every_index_key_that_reindex_writes_for_todo_to_in_progress(
        store, clock, monkeypatch):
    # One table of which indexes a status change touches: IssueIndexes.reindex. Whatever it writes for
    # todo -> in_progress (root and child issues, with a project and type) the claim script must
    # receive among its KEYS, and every status index the script receives is one IssueIndexes.reindex writes.
    from loop.models import ISSUE_FIELDS

    project = store.projects.create({"name": "P"})
    root = store.issues.create({"title": "root", "type": "plan", "status": "todo", "projectId": project["id"]})
    child = store.issues.create({"title": "kid", "type": "task", "status": "todo", "projectId": project["id"],
                                 "parentId": root["id"]})
    clock.advance(1)
    reindexed = _KeyRecorder()
    for issue in (root, child):
        old = store.get_row("issue", ISSUE_FIELDS, issue["id"])
        new = {**old, "status": "in_progress", "updatedAt": store.now(), "agentSessionId": "s"}
        store.issues.indexes.reindex(reindexed, old, new)
    passed: list[list[str]] = []
    scripts = store.dispatch.claimer.s.scripts
    real = type(scripts).__getitem__

    def spying(self, name):
        script = real(self, name)
        if name != "dispatch_claim":
            return script
        return lambda keys, args: (passed.append(list(keys)), script(keys=keys, args=args))[1]

    monkeypatch.setattr(type(scripts), "__getitem__", spying)
    for issue in (root, child):
        assert store.dispatch.claimer.claim("x", None, members=[member(issue["id"], project["id"])]) is not None
    claim_keys = {key for keys in passed for key in keys}
    assert reindexed.keys and reindexed.keys <= claim_keys, reindexed.keys - claim_keys
    status_indexes = {key for key in claim_keys
                      if key.startswith((store.keys.issue_bits(), store.keys.counts(""), store.keys.issue_roots()))}
    assert status_indexes <= reindexed.keys, status_indexes - reindexed.keys
