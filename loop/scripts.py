"""Lua scripts, loaded once from ``loop/lua/*.lua`` and run with EVALSHA.

:class:`Script` (redis-py's, with a leaner call on one Redis) sends EVALSHA and falls back to
loading the script on NOSCRIPT, so a ``SCRIPT FLUSH`` or a Redis restart is harmless.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.typing import EncodableT, KeyT

from loop.redis_commands import Client, Pipe, Value

#: ``--! function <name>``: a line a script includes another script by, as a local function.
INCLUDE = re.compile(r"^--! function (\w+)$", re.MULTILINE)


@cache
def source(name: str) -> str:
    """The text of ``loop/lua/<name>.lua``, each ``--! function <other>`` line replaced by
    ``local function <other>(KEYS, ARGV) <other's body> end``: a script that composes others
    (``issue_new.lua``) runs exactly their code, each with its own KEYS and ARGV (Lua scripts
    cannot call one another)."""
    text = resources.files("loop").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    return INCLUDE.sub(lambda m: f"local function {m[1]}(KEYS, ARGV)\n{body(m[1])}\nend", text)


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


def watch_eval(pipe: Pipe, watch: Sequence[str], name: str, keys: Sequence[str], *args: Value) -> Any:
    """``pipe.watch(*watch)`` then :func:`eval_body`: the first read of a transaction, in ONE round
    trip (both commands sent together) on a plain redis-py pipeline not yet watching; in two
    otherwise (a cluster pipeline routes its own WATCH).

    A dropped connection takes the two-command path, with redis-py's retries, on a new connection
    (the WATCH died with the old one); any other error closes the connection (a reply may be
    unread) and is raised as redis-py would raise it (a timeout is never retried)."""
    if not isinstance(pipe, redis.client.Pipeline) or pipe.watching or pipe.explicit_transaction:
        pipe.watch(*watch)
        return eval_body(pipe, name, keys, *args)
    conn = pipe.connection or pipe.connection_pool.get_connection()
    pipe.connection = conn
    try:
        conn.send_packed_command(conn.pack_commands([("WATCH", *watch), ("EVAL", body(name), len(keys), *keys, *args)]))
        pipe.parse_response(conn, "WATCH")
        pipe.watching = True
        return pipe.parse_response(conn, "EVAL")
    except redis.ResponseError:  # an error reply: the connection is sound once both are read
        if not pipe.watching:
            _drop(pipe, conn)
        raise
    except redis.ConnectionError:
        _drop(pipe, conn)
        pipe.watch(*watch)
        return eval_body(pipe, name, keys, *args)
    except BaseException:
        _drop(pipe, conn)
        raise


class NotComposable(Exception):
    """A transaction staged on a :class:`Stager` sent a command before MULTI (a WATCH or a read):
    it depends on what it reads, so it cannot run as one composed script."""


#: The pool a :class:`Stager` is built with: it never hands out a connection (nothing is sent).
_NO_POOL = redis.ConnectionPool()


class Stager(redis.client.Pipeline):
    """A MULTI pipeline that is never sent: the same staging code queues a transaction's writes on
    it, and :meth:`parts` says whether they are all scripts a composing script can run in one
    command (``issue_new.lua``). Any command before ``multi()`` raises :class:`NotComposable`:
    a hook that must read (under WATCH) needs the WATCH path."""

    def __init__(self, attempt_reads: dict[object, object]) -> None:
        super().__init__(_NO_POOL, {}, True, None)
        #: What the transaction would have read, known already (``Pipe.attempt_reads``).
        self.attempt_reads = attempt_reads

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if not self.explicit_transaction:
            raise NotComposable(str(args[0]))
        return self.pipeline_execute_command(*args, **options)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        raise NotComposable("EXEC")

    def parts(self, names: Sequence[str], commands: Collection[str] = ()
              ) -> list[tuple[str, list[Value], list[Value]]] | None:
        """The queued commands as ``(name, keys, args)`` when every one is an :func:`eval_body` of a
        script in ``names`` (named by it) or a command in ``commands`` (single-key: its first
        argument is its key); else ``None``."""
        by_body = _bodies(tuple(names))
        out: list[tuple[str, list[Value], list[Value]]] = []
        for args, _options in self.command_stack:
            if args[0] in commands and len(args) > 1:
                out.append((str(args[0]), [args[1]], list(args[2:])))
                continue
            name = by_body.get(args[1]) if len(args) > 2 and args[0] == "EVAL" else None
            if name is None:
                return None
            n = int(args[2])
            out.append((name, list(args[3:3 + n]), list(args[3 + n:])))
        return out


#: ``loop/lua/steps.lua``: staged writes run as one command; the scripts and the single-key commands it
#: runs (its COMMANDS mirror these).
STEPS_SCRIPT = "steps"
STEP_PARTS = ("dispatch_enter", "stats_count")
STEP_COMMANDS = frozenset({"HSET", "HDEL", "HINCRBY", "SETBIT", "ZADD", "ZREM", "ZREMRANGEBYRANK", "SADD", "SREM"})


def run_staged(client: Client, scripts: Scripts, stage: Callable[[Pipe], object]) -> None:
    """Apply the writes ``stage`` queues on a MULTI pipeline, atomically: as ONE ``steps.lua`` command
    when they are all of its steps (an EVALSHA costs the client ~40% less than a MULTI/EXEC of three
    commands), else as that MULTI on ``client``. ``stage`` only queues: it may run twice."""
    stager = Stager({})
    stager.multi()
    stage(cast(Pipe, stager))
    parts = stager.parts(STEP_PARTS, STEP_COMMANDS)
    if parts is None:
        pipe = client.pipeline(transaction=True)
        stage(pipe)
        pipe.execute()
        return
    keys, args = composed(parts)
    scripts[STEPS_SCRIPT](keys=keys, args=args)


def composed(parts: Sequence[tuple[str, Sequence[Value], Sequence[Value]]]) -> tuple[list[str], list[Value]]:
    """The KEYS and ARGV tails a composing script takes its parts by (``issue_new.lua``,
    ``steps.lua``): every part's keys in part order; ARGV ``P``, per part its name, key count and
    argument count, then every part's arguments in part order."""
    keys: list[str] = []
    args: list[Value] = [len(parts)]
    for name, part_keys, part_args in parts:
        keys.extend(str(key) for key in part_keys)
        args.extend((name, len(part_keys), len(part_args)))
    for _, _, part_args in parts:
        args.extend(part_args)
    return keys, args


@cache
def _bodies(names: tuple[str, ...]) -> dict[str, str]:
    return {body(name): name for name in names}


def _drop(pipe: redis.client.Pipeline, conn: redis.connection.AbstractConnection) -> None:
    """Close ``conn`` (its WATCH with it) and give ``pipe`` back its unwatched state."""
    conn.disconnect()  # type: ignore[no-untyped-call]
    pipe.watching = False
    pipe.reset()


class Script(redis.commands.core.Script):
    """redis-py's :class:`~redis.commands.core.Script`, whose call on one Redis (not a cluster) takes a
    pooled connection and sends EVALSHA on it directly.

    Why: a script call through ``Redis.evalsha`` costs the client ~15-30 us more than the command
    itself (redis-py 8's per-command observability, event and argument handling), and a claim with
    its prompt makes four (``scripts/bench.py --scenario inprocess``). What redis-py does for a
    command is kept: the connection's retry policy (dropped connections retried within
    ``REDIS_RETRY_SECONDS``, timeouts never: loop/redis_errors.py), a connection that failed is
    disconnected (its reply may be unread), a connection the server asked to move is dropped (the
    next use connects afresh), and a NOSCRIPT reply (a ``SCRIPT FLUSH``, a restarted Redis) loads
    the script and sends it again. A cluster, a pipeline or an explicit ``client`` take redis-py's
    own path.
    """

    def __call__(self, keys: Sequence[KeyT] | None = None, args: Iterable[EncodableT] | None = None,
                 client: redis.Redis | RedisCluster | None = None) -> Any:
        own = self.registered_client
        if client is not None or not isinstance(own, redis.Redis) or own.connection is not None:
            return super().__call__(keys, args, client)
        sent = (len(keys or ()), *(keys or ()), *(args or ()))
        try:
            return _evalsha(own.connection_pool, self.sha, sent)
        except redis.exceptions.NoScriptError:
            self.sha = own.script_load(self.script)
            return _evalsha(own.connection_pool, self.sha, sent)


def _evalsha(pool: redis.ConnectionPool, sha: str, sent: tuple[EncodableT, ...]) -> Any:
    """``EVALSHA sha`` on a connection of ``pool``, as ``Redis.execute_command`` would send it."""
    conn = pool.get_connection()
    try:
        def send() -> Any:
            conn.send_command("EVALSHA", sha, *sent)  # type: ignore[no-untyped-call]
            return conn.read_response()

        return conn.retry.call_with_retry(send, lambda _error: conn.disconnect())  # type: ignore[no-untyped-call]
    finally:
        if conn.should_reconnect():  # type: ignore[no-untyped-call]
            conn.disconnect()  # type: ignore[no-untyped-call]
        pool.release(conn)


class Scripts:
    """Per-connection registry of Loop's scripts."""

    def __init__(self, client: redis.Redis | RedisCluster) -> None:
        self._client = client
        self._scripts: dict[str, Script] = {}

    def __getitem__(self, name: str) -> Script:
        script = self._scripts.get(name)
        if script is None:
            script = Script(self._client, source(name))
            self._scripts[name] = script
        return script
