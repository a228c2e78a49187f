"""``loop.scripts.watch_eval``: a transaction's WATCH and first read in one round trip, the WATCH
as effective as a separate one, and a connection left in step whatever the reply."""

from __future__ import annotations

import pytest
import redis

from loop.scripts import watch_eval

READ = "signal_join"  # returns {GET KEYS[1], HGETALL KEYS[2]}


def sends(pipe) -> list[int]:
    """Counts the packets the pipeline's connection sends from now on."""
    count: list[int] = []
    conn = pipe.connection or pipe.connection_pool.get_connection()
    pipe.connection = conn
    original = conn.send_packed_command

    def send(command, check_health=True):
        count.append(1)
        return original(command, check_health)

    conn.send_packed_command = send
    return count


def test_the_watch_and_the_read_go_in_one_round_trip_and_the_watch_holds(store):
    k = store.keys
    store.r.set(k.signal_group("a"), "x")
    with store.r.pipeline() as pipe:
        count = sends(pipe)
        current, raw = watch_eval(pipe, [k.signal_group("a")], READ, [k.signal_group("a"), k.issue("i")])
        assert (current, raw, len(count), pipe.watching) == ("x", [], 1, True)
        store.r.set(k.signal_group("a"), "y")  # another client, after the WATCH
        pipe.multi()
        pipe.set(k.signal_group("a"), "z")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert store.r.get(k.signal_group("a")) == "y"


def test_a_dropped_connection_is_reopened_and_watched_again(store):
    k = store.keys
    with store.r.pipeline() as pipe:
        conn = pipe.connection = pipe.connection_pool.get_connection()
        conn.send_command("CLIENT", "ID")
        store.r.execute_command("CLIENT", "KILL", "ID", conn.read_response())  # the server drops it
        current, _ = watch_eval(pipe, [k.signal_group("b")], READ, [k.signal_group("b"), k.issue("i")])
        assert current is None and pipe.watching
        store.r.set(k.signal_group("b"), "changed")
        pipe.multi()
        pipe.set(k.signal_group("b"), "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert store.r.get(k.signal_group("b")) == "changed"


def test_an_error_reply_leaves_the_connection_in_step(store):
    k = store.keys
    store.r.hset(k.issue("i"), "f", "v")
    with store.r.pipeline() as pipe:
        with pytest.raises(redis.ResponseError):  # HGETALL of a hash read as a string by GET
            watch_eval(pipe, [k.issue("i")], READ, [k.issue("i"), k.issue("i")])
        assert pipe.get(k.issue("missing")) is None  # the next reply is this command's own
        pipe.multi()
        pipe.set(k.signal_group("c"), "1")
        assert pipe.execute() == [True]
