"""loop/redis_commands.py: the Client/Pipe protocols name redis-py's real parameters, and
their replies are what a decoding client returns (against a real redis-server)."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

import pytest
import redis
import redis.client
from redis.cluster import ClusterPipeline

from loop import redis_commands
from loop.connection import LoopCluster
from loop.store.base import connect
from tests.redis_server import spawn_redis

_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _signatures(proto: type) -> list[tuple[str, inspect.Signature]]:
    """Every public method of ``proto`` (inherited ones too), each overload on its own."""
    out = []
    for owner in proto.__mro__:
        for name, fn in vars(owner).items():
            if name.startswith("_") or not callable(fn):
                continue
            # An overload-only method's attribute is typing's dummy: find the overloads by name.
            where = types.SimpleNamespace(__module__=owner.__module__, __qualname__=f"{owner.__qualname__}.{name}")
            out += [(name, inspect.signature(f)) for f in typing.get_overloads(where) or [fn]]  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(("proto", "impl"), [
    (redis_commands.Client, redis.Redis), (redis_commands.Pipe, redis.client.Pipeline),
    # A redis+cluster URL's client (loop/connection.py) must serve the same protocol.
    (redis_commands.Client, LoopCluster), (redis_commands.Pipe, ClusterPipeline)])
def test_every_protocol_method_takes_the_arguments_redis_py_takes(proto: type, impl: type) -> None:
    signatures = _signatures(proto)
    assert len(signatures) > 40
    for name, ours in signatures:
        if impl is ClusterPipeline and name == "eval":
            continue  # refused by the cluster pipeline: scripts go as raw EVAL (next test)
        theirs = inspect.signature(getattr(impl, name)).parameters
        has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in theirs.values())
        positional = [p.name for p in theirs.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        for param in list(ours.parameters.values())[1:]:
            if param.kind in _KINDS:
                assert param.name in theirs or has_kwargs, f"{name}: redis-py has no parameter {param.name!r}"
                if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and param.name in positional:
                    ours_pos = [p.name for p in ours.parameters.values()
                                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD].index(param.name)
                    assert positional.index(param.name) == ours_pos, f"{name}: {param.name!r} is out of place"
            else:
                assert any(p.kind is param.kind for p in theirs.values()), f"{name}: redis-py takes no {param.kind}"


def test_no_transaction_stages_a_script_with_the_eval_method_a_cluster_pipeline_refuses() -> None:
    # Only the single-Redis webhook accept (a redis.client.Pipeline on RQ's connection) may.
    root = Path(__file__).resolve().parent.parent / "loop"
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "pipe.eval(" in p.read_text())
    assert callers == ["signals/intake.py"]


def test_a_decoding_client_returns_the_reply_types_the_protocol_promises() -> None:
    server = spawn_redis()
    try:
        r = redis_commands.decoded(connect(server.url))
        r.hset("h", mapping={"a": 1})
        r.zadd("z", {"m": 2})
        r.sadd("s", "x")
        assert r.hgetall("h") == {"a": "1"}
        assert r.hmget("h", ["a", "b"]) == ["1", None]
        assert r.zrange("z", 0, -1, withscores=True) == [("m", 2.0)]
        assert r.zrevrange("z", 0, -1) == ["m"]
        assert r.smembers("s") == {"x"}
        assert r.type("h") == "hash"
        assert list(r.scan_iter(match="z")) == ["z"]
        with r.pipeline() as pipe:
            pipe.watch("h")
            assert pipe.hget("h", "a") == "1"
            pipe.multi()
            pipe.incr("n")
            assert pipe.execute() == [1]
        r.close()
    finally:
        server.stop()
