"""The store facade and the helpers every domain service shares."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import redis
from redis.cluster import RedisCluster

from loop import connection, models
from loop.clock import Clock, SystemClock
from loop.connection import AnyRedis
from loop.errors import ConfigError, Conflict, NotFound
from loop.keys import Keys
from loop.redis_commands import decoded
from loop.scripts import Scripts
from loop.settings import Settings
from loop.store.types import Client, IssueHook, Pipe, is_id
from loop.tunables import MAX_TX_RETRIES, REPLICA_WAIT_MS

if TYPE_CHECKING:
    from loop.store.reindex import Extension

__all__ = ["DEFAULT_REDIS_URL", "IssueHook", "RedisStore", "connect", "is_id"]

T = TypeVar("T")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: loop/lua/rows_read.lua: a page of rows in one command.
ROWS_SCRIPT = "rows_read"


def connect(url: str, **kwargs: Any) -> AnyRedis:
    """A client of ``url`` (one Redis, ``redis+cluster://`` or ``redis+sentinel://``: loop/connection.py)
    that returns ``str`` (Loop stores UTF-8 text only).

    Dropped connections are retried for a bounded time, timeouts never (loop/redis_errors.py);
    a cluster client retries with its own policy.
    """
    from loop.redis_errors import DeadlineRetry

    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("retry", DeadlineRetry())
    kwargs.setdefault("health_check_interval", 30)
    return connection.connect(url, **kwargs)


class RedisStore:
    """Everything Loop keeps, as one object of domain services.

    ``store.issues``, ``store.projects``... are the services the API resources call; each
    takes plain dicts and raises :mod:`loop.errors`. The store knows nothing of the subsystems
    above it (dispatch, signals, prompts): :mod:`loop.runtime` builds them on top of it and
    registers their hooks.
    """

    def __init__(
        self,
        client: AnyRedis,
        settings: Settings | None = None,
        clock: Clock | None = None,
    ) -> None:
        from loop.store.apikeys import ApiKeys
        from loop.store.comments import Comments
        from loop.store.goals import Goals
        from loop.store.idempotency import Idempotency
        from loop.store.issues import Issues
        from loop.store.labels import Labels
        from loop.store.projects import Projects
        from loop.store.relations import Relations

        #: The client as Loop sees it: the commands it uses, ``str`` replies (loop/redis_commands.py).
        self.r: Client = decoded(client)
        #: The redis-py client itself, for what takes one (RQ queues) and the rare undecoded read.
        self.raw: AnyRedis = client
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        self.keys = Keys(self.settings.namespace)
        self.scripts = Scripts(client)
        #: Run inside every issue write, in order (registered by :mod:`loop.runtime`).
        self.issue_hooks: list[IssueHook] = []
        #: What ``loop admin check``/``repair`` audit beyond the store's indexes (registered likewise).
        self.audits: list[Extension] = []
        self.issues = Issues(self)
        self.projects = Projects(self)
        self.goals = Goals(self)
        self.labels = Labels(self)
        self.relations = Relations(self)
        self.comments = Comments(self)
        self.apikeys = ApiKeys(self)
        self.idempotency = Idempotency(self)

    @functools.cached_property
    def rq(self) -> redis.Redis:
        """RQ's Redis, undecoded (RQ pickles): ``LOOP_QUEUE_URL``, else the data Redis itself."""
        from loop.redis_errors import DeadlineRetry

        try:
            # Dropped connections are retried briefly; a silent Redis is not waited on again.
            return connection.queue_client(self.settings.queue_url, self.raw, retry=DeadlineRetry())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def master(self) -> redis.Redis:
        """A client of the one Redis holding this namespace: the data Redis, or on a cluster the master
        of the namespace's slot (for what a cluster client will not send: INFO in a pipeline, WAIT)."""
        if isinstance(self.raw, RedisCluster):
            node = self.raw.get_node_from_key(self.keys.prefix)  # type: ignore[no-untyped-call]
            client: redis.Redis = node.redis_connection
            return client
        return self.raw

    def confirm_replicated(self) -> bool:
        """Whether ``LOOP_WAIT_REPLICAS`` replicas hold every write made so far (always true when 0).

        ``WAIT`` covers the writes of its own connection only: a probe write and the WAIT go down one
        connection (a non-transactional pipeline; on a cluster, the namespace's master), and the probe
        comes after every earlier write of this process, on whatever connection they went."""
        wanted = self.settings.wait_replicas
        if not wanted:
            return True
        probe = self.keys.replica_probe()
        pipe = decoded(self.master()).pipeline(transaction=False)
        pipe.set(probe, self.now(), px=60_000)
        pipe.execute_command("WAIT", wanted, REPLICA_WAIT_MS)
        _ok, acked = pipe.execute()
        return int(acked) >= wanted

    def now(self) -> int:
        return self.clock.now_ms()

    # ------------------------------------------------------------------ helpers
    def transact(self, fn: Callable[[Pipe], T], *watch: str) -> T:
        """Run ``fn`` in an optimistic WATCH/MULTI transaction, retrying on contention.

        ``fn`` receives a pipeline in immediate mode (reads run at once and may
        ``pipe.watch`` more keys); it must call ``pipe.multi()`` before queuing writes.
        ``pipe.attempt_reads`` is a dict emptied at every attempt: a watched read made twice in one
        attempt (a claim fence, then the issue hook) may be kept there, since a change to it in
        between fails the EXEC anyway.
        """
        with self.r.pipeline() as pipe:
            for _ in range(MAX_TX_RETRIES):
                pipe.attempt_reads = {}
                try:
                    if watch:
                        pipe.watch(*watch)
                    result = fn(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise Conflict("The resource is being modified concurrently; retry the request.")

    def next_seq(self) -> int:
        return int(self.r.incr(self.keys.row_seq()))

    def get_row(self, kind: str, fields: Mapping[str, str], row_id: str, client: Client | None = None) -> models.Row | None:
        if not is_id(row_id):
            return None
        raw = (client or self.r).hgetall(self.keys.row(kind, row_id))
        return models.decode(fields, raw) if raw else None

    def get_rows(self, kind: str, fields: Mapping[str, str], ids: Iterable[str]) -> list[models.Row]:
        """Several rows in one command, in ``ids`` order, skipping missing ones."""
        return self._read_rows(kind, fields, ids, models.decode_page)

    def wire_rows(self, kind: str, fields: Mapping[str, str], ids: Iterable[str]) -> list[models.Row]:
        """``[models.wire(fields, r) for r in get_rows(...)]``, straight from the raw values (a page's
        hot path: no intermediate row per issue)."""
        return self._read_rows(kind, fields, ids, models.wire_page)

    def wire_fragments(self, kind: str, fields: Mapping[str, str], ids: Iterable[str]) -> list[orjson.Fragment]:
        """:meth:`wire_rows` already encoded (``models.wire_fragments``), for a response that
        only embeds them: ``GET /api/issues``."""
        return models.wire_fragments(fields, self.read_encoded(kind, ids))

    def read_encoded(self, kind: str, ids: Iterable[str]) -> list[str]:
        """Each row as one JSON string of its HGETALL reply (``rows_read.lua`` "json"; ``"{}"``
        for a missing one), in ``ids`` order: the input of ``models.wire_fragments``/``wire_entries``."""
        keys = self._row_keys(kind, ids)
        if not keys:
            return []
        encoded: list[str] = self.scripts[ROWS_SCRIPT](keys=keys, args=["json"])
        return encoded

    def _read_rows(self, kind: str, fields: Mapping[str, str], ids: Iterable[str],
                   convert: Callable[[Mapping[str, str], list[list[str]]], list[models.Row | None]],
                   ) -> list[models.Row]:
        """One ``rows_read.lua`` call (one reply hiredis parses in C, instead of a command per row)."""
        keys = self._row_keys(kind, ids)
        if not keys:
            return []
        replies: list[list[str]] = self.scripts[ROWS_SCRIPT](keys=keys)
        return [row for row in convert(fields, replies) if row is not None]

    def _row_keys(self, kind: str, ids: Iterable[str]) -> list[str]:
        """The row keys of ``ids`` (anything not shaped like an id skipped: it names no row)."""
        head = self.keys.row_prefix(kind)
        return [head + i for i in ids if is_id(i)]

    def live_row(self, kind: str, fields: Mapping[str, str], row_id: str, message: str) -> models.Row:
        """The row, or :class:`NotFound` with ``message`` if missing or soft-deleted."""
        row = self.get_row(kind, fields, row_id)
        if row is None or row.get("deletedAt") is not None:
            raise NotFound(message)
        return row

    def page(
        self, index: str, kind: str, fields: Mapping[str, str], limit: int, offset: int, desc: bool = False
    ) -> tuple[list[models.Row], int]:
        """One page of an index zset: the rows and the exact total (2 round trips)."""
        ids, total = self.page_ids(index, limit, offset, desc)
        return self.get_rows(kind, fields, ids), total

    def page_ids(self, index: str, limit: int, offset: int, desc: bool = False) -> tuple[list[str], int]:
        """One page of an index zset: the ids and the exact total (1 round trip)."""
        pipe = self.r.pipeline(transaction=False)
        if desc:
            pipe.zrevrange(index, offset, offset + limit - 1)
        else:
            pipe.zrange(index, offset, offset + limit - 1)
        pipe.zcard(index)
        ids, total = pipe.execute()
        return ids, int(total)

    def write_row(self, pipe: Pipe, kind: str, fields: Mapping[str, str], row_id: str,
                  changes: Mapping[str, Any]) -> None:
        """Queue an HSET of the non-null changes and an HDEL of the nulled ones."""
        key = self.keys.row(kind, row_id)
        mapping = models.encode(fields, changes)
        if mapping:
            pipe.hset(key, mapping=mapping)
        gone = models.stale(fields, changes)
        if gone:
            pipe.hdel(key, *gone)

    def delete_namespace(self) -> int:
        """Remove every key of this namespace (tests and ``loop reset``)."""
        n = 0
        batch: list[str] = []
        for key in self.r.scan_iter(match=self.keys.all_pattern(), count=1000):
            batch.append(key)
            if len(batch) >= 500:
                n += int(self.r.unlink(*batch))
                batch = []
        if batch:
            n += int(self.r.unlink(*batch))
        return n

