"""Staged writes run as ONE command (``steps.lua``, ``loop.scripts.run_staged``) when they are all its
steps: exactly what the MULTI would write, atomically; any other command keeps the MULTI."""

from __future__ import annotations

import pytest

from loop.scripts import STEPS_SCRIPT, run_staged


def commands(store) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in store.r.info("commandstats").items()}


def stage_all(k):
    def stage(pipe):
        pipe.hset(k.tmp("h"), mapping={"a": "1", "b": "x y"})
        pipe.hincrby(k.tmp("h"), "n", 2)
        pipe.hdel(k.tmp("h"), "a")
        pipe.zadd(k.tmp("z"), {"m1": 1.5, "m2": 2}, gt=True)
        pipe.zrem(k.tmp("z"), "m1")
        pipe.sadd(k.tmp("s"), "one", "two")
        pipe.setbit(k.tmp("b"), 9, 1)
        pipe.zremrangebyrank(k.tmp("z"), 0, -2)
    return stage


def state(store):
    k = store.keys
    return (store.r.hgetall(k.tmp("h")), store.r.zrange(k.tmp("z"), 0, -1, withscores=True),
            sorted(store.r.smembers(k.tmp("s"))), store.r.getbit(k.tmp("b"), 9))


def test_staged_writes_run_as_one_command_and_write_what_the_multi_writes(private_store):
    store = private_store
    k = store.keys
    pipe = store.r.pipeline(transaction=True)
    stage_all(k)(pipe)
    pipe.execute()
    by_multi = state(store)
    store.r.delete(k.tmp("h"), k.tmp("z"), k.tmp("s"), k.tmp("b"))
    run_staged(store.r, store.scripts, lambda p: p.hset(k.tmp("warm"), "x", "1"))  # (the script is loaded)
    store.r.config_resetstat()
    run_staged(store.r, store.scripts, stage_all(k))
    assert state(store) == by_multi == ({"b": "x y", "n": "2"}, [("m2", 2.0)], ["one", "two"], 1)
    stats = commands(store)
    assert stats["evalsha"] == 1 and not {"multi", "exec", "eval"} & stats.keys()


def test_a_write_that_is_not_a_step_keeps_the_multi(private_store):
    store = private_store
    k = store.keys
    store.r.config_resetstat()
    run_staged(store.r, store.scripts, lambda p: (p.hset(k.tmp("h"), "a", "1"), p.expire(k.tmp("h"), 60)))
    assert store.r.hget(k.tmp("h"), "a") == "1" and store.r.ttl(k.tmp("h")) > 0
    stats = commands(store)
    assert stats["multi"] == 1 and stats["exec"] == 1 and "evalsha" not in stats


def test_an_unknown_step_is_refused_before_anything_is_written(store):
    k = store.keys
    with pytest.raises(Exception, match="unknown step"):
        store.scripts[STEPS_SCRIPT](keys=[k.tmp("h"), k.tmp("h")], args=[2, "HSET", 1, 2, "DEL", 1, 0, "a", "1"])
    with pytest.raises(Exception, match="unknown step"):  # a command with two keys is not a step either
        store.scripts[STEPS_SCRIPT](keys=[k.tmp("h"), k.tmp("x")], args=[1, "HSET", 2, 2, "a", "1"])
    assert store.r.exists(k.tmp("h")) == 0


def test_a_claim_counts_its_prompt_version_in_one_command(private_store):
    store = private_store
    for i in range(2):
        store.issues.create({"title": f"t{i}", "type": "task", "status": "todo"})
    store.dispatch.next("agent")  # (every script is loaded)
    store.r.config_resetstat()
    body = store.dispatch.next("agent")
    stats = commands(store)
    assert not {"multi", "exec", "watch"} & stats.keys()
    version = body["meta"]["versionId"]
    assert store.r.hget(store.keys.session(body["claim"]["sessionId"]), "versionId") == version
    assert store.r.hget(store.keys.dispatch_version(version), "dispatched") == "2"
