"""A script call on one Redis goes straight to a pooled connection (loop.scripts.Script), and keeps
what redis-py does for a command: NOSCRIPT reloads, a dropped connection is retried on a new one,
an error reply leaves the connection usable, and every connection goes back to the pool."""

from __future__ import annotations

import pytest
import redis

from loop.scripts import Script
from tests.redis_server import spawn_redis


@pytest.fixture
def own():
    proc = spawn_redis()
    try:
        yield proc
    finally:
        proc.stop()


def _client(url: str) -> redis.Redis:
    from loop.store.base import connect

    client = connect(url)
    assert isinstance(client, redis.Redis)
    return client


ECHO = "return {KEYS[1] or '-', ARGV[1] or '-', #KEYS, #ARGV}"


def test_a_script_call_does_not_go_through_the_clients_execute_command(own, monkeypatch) -> None:
    client = _client(own.url)
    script = Script(client, ECHO)
    sent: list[tuple[object, ...]] = []
    real = client.execute_command
    monkeypatch.setattr(client, "execute_command", lambda *a, **kw: sent.append(a) or real(*a, **kw))
    assert script(keys=["k"], args=["v", 2]) == ["k", "v", 1, 2]
    assert script(keys=[], args=[]) == ["-", "-", 0, 0]
    # The first call met NOSCRIPT and loaded the script; no EVALSHA went through Redis.evalsha.
    assert [a[0] for a in sent] == ["SCRIPT LOAD"]
    # An explicit client (a pipeline, another Redis) takes redis-py's own path.
    assert script(keys=["k"], args=["v"], client=client) == ["k", "v", 1, 1]
    assert [a[0] for a in sent] == ["SCRIPT LOAD", "EVALSHA"]


def test_a_flushed_script_is_loaded_again_and_the_call_answers(own) -> None:
    client = _client(own.url)
    script = Script(client, ECHO)
    assert script(keys=["a"], args=["b"])[0] == "a"
    client.script_flush()
    assert client.script_exists(script.sha) == [False]
    assert script(keys=["c"], args=["d"]) == ["c", "d", 1, 1]
    assert client.script_exists(script.sha) == [True]


def test_a_connection_dropped_under_a_call_is_retried_on_a_new_one(own, monkeypatch) -> None:
    client = _client(own.url)
    script = Script(client, "return redis.call('INCR', KEYS[1])")
    assert script(keys=["n"]) == 1
    other = redis.Redis.from_url(own.url)
    killed: list[str] = []
    real = redis.connection.AbstractConnection.send_command

    def dropped_first(self, *args, **kw):
        if args[0] == "EVALSHA" and not killed:  # the server drops the connection as the call goes out
            host, port = self._sock.getsockname()[:2]
            killed.append(f"{host}:{port}")
            assert other.client_kill(killed[0])
        return real(self, *args, **kw)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", dropped_first)
    assert script(keys=["n"]) == 2  # retried once on a fresh connection: the command ran once
    assert len(killed) == 1
    assert int(other.get("n") or 0) == 2


def test_an_error_reply_is_raised_and_the_connection_stays_usable_and_pooled(own) -> None:
    client = _client(own.url)
    failing = Script(client, "return redis.error_reply('NOPE ' .. ARGV[1])")
    ok = Script(client, "return ARGV[1]")
    pool = client.connection_pool
    with pytest.raises(redis.ResponseError, match="NOPE x"):
        failing(args=["x"])
    assert ok(args=["y"]) == "y"
    assert len(pool._in_use_connections) == 0  # every connection was given back
    assert len(pool._available_connections) == 1  # and the same one served both calls


def test_a_timed_out_call_is_not_sent_again(own, monkeypatch) -> None:
    client = _client(own.url)
    client.connection_pool.connection_kwargs["socket_timeout"] = 0.2
    client.connection_pool.reset()
    script = Script(client, "return redis.call('INCR', KEYS[1])")
    assert script(keys=["t"]) == 1
    sends: list[object] = []
    real = redis.connection.AbstractConnection.send_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command",
                        lambda self, *a, **kw: sends.append(a[0]) or real(self, *a, **kw))
    blocker = redis.Redis.from_url(own.url)
    blocker.client_pause(5_000, all=True)  # the script is not run until the pause ends
    try:
        with pytest.raises(redis.TimeoutError):
            script(keys=["t"])
    finally:
        blocker.client_unpause()
    assert sends.count("EVALSHA") == 1  # a timeout is never retried: the command may have run
    assert script(keys=["t"]) in (2, 3)  # and the next call gets a fresh connection
