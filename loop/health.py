"""Health: can Redis serve (``GET /health``), is everything around it running (``GET /health/ready``).

``probe`` is one write (``SET P:health:probe PX``): a write fails exactly when a request's
write would (OOM, READONLY, LOADING, MISCONF, BUSY, unreachable), where PING answers through
most of those. ``readiness`` adds the state of the rest of Loop in a fixed number of round
trips (one pipeline, one job read, RQ's worker registry: never in proportion to the backlog).
``check_redis_config`` is the start-up warning about settings that lose data silently (and the
one that makes every issue cost twice the memory).
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import TYPE_CHECKING, Any

import redis
from redis.cluster import RedisCluster
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.utils import utcparse

from loop.connection import AnyRedis, primaries
from loop.redis_commands import Client, decoded
from loop.redis_errors import unavailable_reason
from loop.tunables import (
    HEALTH_MEMORY_RATIO,
    HEALTH_PROBE_TTL_MS,
    HEALTH_QUEUE_AGE_SECONDS,
    HEALTH_SWEEP_OVERDUE_SECONDS,
    REDIS_HASH_VALUE_BYTES,
)

if TYPE_CHECKING:
    from loop.store.base import RedisStore

log = logging.getLogger("loop.health")

Report = dict[str, Any]


def _reason(exc: Exception) -> str:
    return unavailable_reason(exc) or f"error ({type(exc).__name__})"


def probe(store: RedisStore) -> redis.RedisError | None:
    """``None`` when Redis accepts a write now, else the error (``unavailable_reason`` names it)."""
    try:
        store.r.set(store.keys.health_probe(), store.now(), px=HEALTH_PROBE_TTL_MS)
    except redis.RedisError as exc:
        return exc
    return None


def reason(exc: Exception) -> str:
    """Why ``exc`` keeps Redis from serving (an unexpected error is named by its class)."""
    return _reason(exc)


def _info(text_or_dict: Any) -> dict[str, Any]:
    return text_or_dict if isinstance(text_or_dict, dict) else {}


def readiness(store: RedisStore, queue_name: str) -> tuple[list[str], Report]:
    """(problems, report). No problems means ready; the rule is documented in docs/operations.md."""
    now = store.now()
    keys = store.keys
    queue = Queue(queue_name, connection=store.rq)
    # The namespace's own Redis (on a cluster, its slot's master): a cluster pipeline refuses INFO.
    pipe = decoded(store.master()).pipeline(transaction=False)
    pipe.set(keys.health_probe(), now, px=HEALTH_PROBE_TTL_MS)
    for section in ("memory", "persistence", "replication"):  # one section per INFO on Redis 6.2
        pipe.info(section)
    # RQ's keys live on RQ's Redis: the data pipeline's own when they share one (one round trip).
    separate = store.settings.separate_queue
    qpipe = queue.connection.pipeline(transaction=False) if separate else pipe
    qpipe.llen(queue.key)
    qpipe.lindex(queue.key, 0)
    qpipe.zcard(ScheduledJobRegistry.key_template.format(queue_name))  # retries waiting for their delay
    qpipe.zcard(FailedJobRegistry.key_template.format(queue_name))
    pipe.get(keys.lease_sweep())
    pipe.zcount(keys.dispatch_leases(), "-inf", now - HEALTH_SWEEP_OVERDUE_SECONDS * 1000)
    try:
        replies = pipe.execute(raise_on_error=False)
        if separate:
            replies = [*replies[:4], *qpipe.execute(raise_on_error=False), *replies[4:]]
    except redis.RedisError as exc:
        return [f"redis: {_reason(exc)}"], {"redis": {"status": _reason(exc)}}
    failed = [r for r in replies if isinstance(r, Exception)]
    if failed:
        reason = _reason(failed[0])
        return [f"redis: {reason}"], {"redis": {"status": reason}}
    _probe, memory, persistence, replication, queued, oldest, scheduled, failures, swept, unswept = replies
    problems: list[str] = []
    report = {
        "redis": _redis_report(_info(memory), _info(persistence), _info(replication), problems),
        "workers": _workers_report(queue, now, problems),
        "webhooks": _queue_report(store, queue_name, int(queued), oldest, int(scheduled), int(failures), now,
                                  problems),
        "leases": _leases_report(swept, int(unswept), now, problems),
    }
    return problems, report


def _redis_report(memory: dict[str, Any], persistence: dict[str, Any], replication: dict[str, Any],
                  problems: list[str]) -> Report:
    used = int(memory.get("used_memory", 0))
    cap = int(memory.get("maxmemory", 0))
    ratio = round(used / cap, 4) if cap else None
    if ratio is not None and ratio >= HEALTH_MEMORY_RATIO:
        problems.append(f"redis: memory at {ratio:.0%} of maxmemory")
    return {
        "status": "ok",
        "usedMemory": used,
        "maxmemory": cap,
        "memoryRatio": ratio,
        "maxmemoryPolicy": memory.get("maxmemory_policy"),
        "role": replication.get("role"),
        "aofEnabled": bool(int(persistence.get("aof_enabled", 0))),
        "rdbLastSaveStatus": persistence.get("rdb_last_bgsave_status"),
    }


def _age_s(now_ms: int, then_ms: int) -> float:
    return round(max(0, now_ms - then_ms) / 1000, 3)


def _workers_report(queue: Queue, now: int, problems: list[str]) -> Report:
    # RQ deletes a worker's key when it stops heartbeating (TTL), so every listed worker is alive.
    workers = Worker.all(queue=queue)
    listed = []
    for w in sorted(workers, key=lambda w: w.name):
        beat = w.last_heartbeat
        age = _age_s(now, int(beat.replace(tzinfo=UTC).timestamp() * 1000)) if beat else None
        listed.append({"name": w.name, "state": str(w.get_state()), "heartbeatAgeSeconds": age})
    if not listed:
        problems.append(f"workers: no live worker on queue {queue.name}")
    return {"live": len(listed), "list": listed}


def _queue_report(store: RedisStore, queue_name: str, queued: int, oldest: str | None, scheduled: int, failures: int,
                  now: int, problems: list[str]) -> Report:
    age = None
    if oldest:
        oldest = oldest if isinstance(oldest, str) else oldest.decode()
        raw = store.rq.hget(Job.key_for(oldest), "enqueued_at")  # RQ's Redis (bytes)
        enqueued = raw.decode() if isinstance(raw, bytes) else raw
        if enqueued:
            age = _age_s(now, int(utcparse(enqueued).replace(tzinfo=UTC).timestamp() * 1000))
    if age is not None and age > HEALTH_QUEUE_AGE_SECONDS:
        problems.append(f"webhooks: oldest queued job waited {age:.0f} s")
    return {"queue": queue_name, "queued": queued, "oldestAgeSeconds": age, "retrying": scheduled,
            "failed": failures}


def _leases_report(swept: str | None, unswept: int, now: int, problems: list[str]) -> Report:
    age = _age_s(now, int(swept)) if swept else None
    overdue = age is None or age > HEALTH_SWEEP_OVERDUE_SECONDS
    if overdue:
        problems.append("leases: periodic sweep overdue" if age is not None else "leases: never swept")
    return {"lastSweepAgeSeconds": age, "sweepOverdue": overdue, "expiredUnswept": unswept}


# ------------------------------------------------------------------ start-up check
def check_redis_config(client: Client, name: str = "Redis") -> list[str]:
    """Warnings about a Redis that can lose Loop's data silently (each also logged), ``name``
    naming the server in them."""
    warnings: list[str] = []
    try:
        memory = client.info("memory")
        persistence = client.info("persistence")
    except redis.RedisError as exc:
        log.warning("could not check the Redis configuration: %s", exc)
        return []
    policy = memory.get("maxmemory_policy")
    if policy and policy != "noeviction":
        warnings.append(f"{name} maxmemory-policy is {policy}: a full Redis will evict Loop's data; "
                        "set maxmemory-policy noeviction (docs/operations.md)")
    if not int(persistence.get("aof_enabled", 0)) and not _rdb_saves(client):
        warnings.append(f"{name} has no persistence (appendonly no, no save points): a restart loses every "
                        "issue; enable AOF (docs/operations.md)")
    limit = _hash_value_limit(client)
    if limit is not None and limit < REDIS_HASH_VALUE_BYTES:
        warnings.append(f"{name} hash-max-listpack-value is {limit}: an issue with a longer description, title "
                        "or summary leaves Redis's compact hash encoding (about twice the memory); set "
                        f"hash-max-listpack-value {REDIS_HASH_VALUE_BYTES} (docs/operations.md)")
    for warning in warnings:
        log.warning(warning)
    return warnings


def _rdb_saves(client: Client) -> bool:
    """Whether RDB save points are configured; managed Redis may refuse CONFIG: assume they are."""
    try:
        return bool((client.config_get("save") or {}).get("save", "").strip())
    except redis.RedisError:
        return True


def _hash_value_limit(client: Client) -> int | None:
    """``hash-max-listpack-value`` (``hash-max-ziplist-value`` before Redis 7), or ``None`` when
    managed Redis refuses CONFIG (then nothing is known: no warning)."""
    try:
        for name in ("hash-max-listpack-value", "hash-max-ziplist-value"):
            value = (client.config_get(name) or {}).get(name)
            if value is not None:
                return int(value)
    except (redis.RedisError, ValueError):
        return None
    return None


_checked: set[str] = set()


def check_redis_config_once(client: AnyRedis, url: str) -> None:
    """:func:`check_redis_config` the first time a process connects to ``url``."""
    if url not in _checked:
        _checked.add(url)
        if isinstance(client, RedisCluster):  # every master holds namespaces: check each, by name
            for where, node in primaries(client):
                check_redis_config(decoded(node), f"Redis {where}")
        else:
            check_redis_config(decoded(client))
