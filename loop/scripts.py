"""Lua scripts, loaded once from ``loop/lua/*.lua`` and run with EVALSHA.

redis-py's :class:`~redis.commands.core.Script` sends EVALSHA and falls back to loading the
script on NOSCRIPT, so a ``SCRIPT FLUSH`` or a Redis restart is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.cluster import RedisCluster

from loop.store.commands import Pipe, Value


@cache
def source(name: str) -> str:
    """The text of ``loop/lua/<name>.lua``."""
    return resources.files("loop").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@cache
def body(name: str) -> str:
    """:func:`source` without its header comment: what :func:`eval_body` sends."""
    text = source(name)
    return text[text.index("]]") + 2:].lstrip() if text.startswith("--[[") else text


def eval_body(pipe: Pipe, name: str, keys: Sequence[str], *args: Value) -> Any:
    """Run (on a watching pipeline) or queue (after MULTI) ``loop/lua/<name>.lua`` as EVAL of its body.

    Not EVALSHA: inside MULTI a NOSCRIPT error (after SCRIPT FLUSH or a restart) would fail that
    one command while the rest of the transaction still applies, and redis-py would add a SCRIPT
    EXISTS round trip before every such transaction. A raw ``EVAL`` command, since redis-py's
    cluster pipeline refuses its ``eval`` method but routes the raw command by its KEYS (one
    namespace's slot).
    """
    return pipe.execute_command("EVAL", body(name), len(keys), *keys, *args)


class Scripts:
    """Per-connection registry of Loop's scripts."""

    def __init__(self, client: redis.Redis | RedisCluster) -> None:
        self._client = client
        self._scripts: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._client.register_script(source(name))
            self._scripts[name] = script
        return script
