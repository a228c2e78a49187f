"""Redis URLs and the clients they name: one Redis, a Redis Cluster, or a Sentinel-managed master.

``redis://``, ``rediss://``, ``unix://``
    one Redis (redis-py's own URL syntax).
``redis+cluster://[[user]:password@]host:port[,host:port...]``
    a Redis Cluster (redis-py's :class:`~redis.cluster.RedisCluster`); the nodes are only the
    first ones asked for the slot map. Database 0 only (a cluster has no other).
``redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db]``
    the master Sentinel currently names (redis-py's :class:`~redis.sentinel.Sentinel`); the
    credentials are the master's, the sentinels themselves are asked without any. On failover
    the client finds the new master on its next connection.

A cluster fits Loop's data (every key of a namespace shares its ``{namespace}`` hash tag, so
one namespace lives in one slot), not RQ's queue: RQ needs one Redis (``LOOP_QUEUE_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote, urlparse

import redis
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException
from redis.sentinel import Sentinel, SentinelConnectionPool

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"
SINGLE_SCHEMES = ("redis", "rediss", "unix")
SCHEMES = (*SINGLE_SCHEMES, CLUSTER_SCHEME, SENTINEL_SCHEME)

#: What Loop's data client may be: one Redis (also a Sentinel-managed master) or a cluster.
AnyRedis: TypeAlias = "redis.Redis | RedisCluster"


class LoopCluster(RedisCluster):
    """redis-py's cluster client whose ``pipeline()`` is a MULTI/EXEC transaction by default, as
    ``redis.Redis``'s is (Loop's ``transact`` and every atomic write rely on that default).

    A script staged inside such a transaction goes as a raw ``EVAL`` command
    (:func:`loop.dispatch.index.stage_script`): redis-py's cluster pipeline refuses its ``eval``
    method, but routes the raw command by its KEYS, which Loop's scripts keep in one slot."""

    def pipeline(self, transaction: bool | None = True, shard_hint: None = None) -> ClusterPipeline:
        return super().pipeline(transaction=transaction, shard_hint=shard_hint)  # type: ignore[no-any-return,no-untyped-call]


def primaries(client: RedisCluster) -> list[tuple[str, redis.Redis]]:
    """Each master of ``client``'s cluster as ``("host:port", its own client)``."""
    nodes: list[ClusterNode] = client.get_primaries()  # type: ignore[no-untyped-call]
    return [(f"{n.host}:{n.port}", client.get_redis_connection(n)) for n in nodes]


@dataclass(frozen=True)
class Target:
    """A parsed Redis URL."""

    kind: Literal["single", "cluster", "sentinel"]
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def _nodes(netloc: str) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rsplit("@", 1)[-1]
    out = []
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port[,host:port...], got {item!r}")
        out.append((host.strip("[]"), int(port)))
    return tuple(out)


def _credentials(netloc: str) -> tuple[str | None, str | None]:
    if "@" not in netloc:
        return None, None
    userinfo = netloc.rsplit("@", 1)[0]
    user, sep, password = userinfo.partition(":")
    if not sep:  # redis://secret@host is a password, as redis-py reads it
        return None, unquote(user) or None
    return unquote(user) or None, unquote(password) or None


def parse(url: str) -> Target:
    """``url`` as a :class:`Target`; ValueError saying what is wrong."""
    parsed = urlparse(url)
    scheme = parsed.scheme
    if scheme in SINGLE_SCHEMES:
        if not (parsed.netloc or parsed.path):
            raise ValueError(f"no host in {url!r}")
        return Target("single", url)
    if scheme not in (CLUSTER_SCHEME, SENTINEL_SCHEME):
        raise ValueError(f"the scheme must be one of {', '.join(SCHEMES)}, got {scheme or 'none'!r}")
    nodes = _nodes(parsed.netloc)
    username, password = _credentials(parsed.netloc)
    path = [p for p in parsed.path.split("/") if p]
    if scheme == CLUSTER_SCHEME:
        if path not in ([], ["0"]):
            raise ValueError("a Redis Cluster has database 0 only: no path after the nodes")
        return Target("cluster", url, nodes, username=username, password=password)
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("a redis+sentinel URL ends with /<master name>[/db]")
    return Target("sentinel", url, nodes, path[0], int(path[1]) if len(path) == 2 else 0, username, password)


def connect(url: str, *, decode_responses: bool = True, **kwargs: Any) -> AnyRedis:
    """The client ``url`` names (see the module doc); ``kwargs`` go to every connection.

    ValueError when the URL is malformed or a ``redis+cluster`` URL names a Redis that is not
    a cluster; ``redis.ConnectionError`` when no cluster node answers.
    """
    target = parse(url)
    if target.kind == "single":
        return redis.Redis.from_url(url, decode_responses=decode_responses, **kwargs)
    if target.kind == "sentinel":
        return sentinel_master(target, decode_responses=decode_responses, **kwargs)
    # The cluster client retries moved slots and node failures itself (its own ``retry``).
    for single_only in ("retry", "health_check_interval", "driver_info"):
        kwargs.pop(single_only, None)
    try:
        return LoopCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],  # type: ignore[no-untyped-call]
            username=target.username, password=target.password,
            decode_responses=decode_responses, **kwargs)
    except RedisClusterException as exc:
        if "not enabled" in str(exc):
            raise ValueError(f"{redact(url)} is not a Redis Cluster (cluster mode is disabled on it): "
                             "use a redis:// URL for one Redis") from None
        raise redis.ConnectionError(f"no node of {redact(url)} answered: {exc}") from None


def sentinel_master(target: Target, *, decode_responses: bool = True, **kwargs: Any) -> redis.Redis:
    """A client of the master Sentinel names for ``target`` (found again after a failover)."""
    timeouts = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout") if k in kwargs}
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.service, db=target.db, username=target.username, password=target.password,
        decode_responses=decode_responses, **kwargs)
    return client


def connect_single(url: str, **kwargs: Any) -> redis.Redis:
    """A client of ONE Redis (RQ's queue); ValueError for a cluster URL."""
    client = connect(url, **kwargs)
    if isinstance(client, RedisCluster):
        raise ValueError("RQ needs one Redis, not a Redis Cluster")
    return client


def is_cluster(url: str | None) -> bool:
    return bool(url) and urlparse(url or "").scheme == CLUSTER_SCHEME


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parsed = urlparse(url)
    if parsed.password is None and "@" not in parsed.netloc:
        return url
    return parsed._replace(netloc="***@" + parsed.netloc.rsplit("@", 1)[-1]).geturl()


def binary_client(client: redis.Redis, **overrides: Any) -> redis.Redis:
    """A client on the same server/db as ``client`` that does NOT decode replies (RQ pickles);
    for a Sentinel-managed client, one that follows the same master."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False, **overrides}
    if isinstance(pool, SentinelConnectionPool):
        kwargs.pop("connection_pool", None)  # the pool sets its own proxy
        return redis.Redis(connection_pool=SentinelConnectionPool(
            pool.service_name, pool.sentinel_manager, **kwargs))  # type: ignore[no-untyped-call]
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def queue_client(queue_url: str | None, data: AnyRedis, **overrides: Any) -> redis.Redis:
    """RQ's Redis, undecoded: ``queue_url`` (``LOOP_QUEUE_URL``), else the data Redis itself.

    ValueError when the data Redis is a cluster and no queue URL is given (RQ needs one Redis)."""
    if queue_url:
        return connect_single(queue_url, decode_responses=False, **overrides)
    if isinstance(data, RedisCluster):
        raise ValueError("LOOP_QUEUE_URL is required when REDIS_URL is a Redis Cluster: RQ needs one Redis")
    return binary_client(data, **overrides)
