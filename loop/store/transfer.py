"""Moving a namespace between deployments: ``loop admin export`` / ``loop admin import``.

The export is JSON lines: a header ``{"loopExport": 1, "namespace": ..., "keys": n}`` then one
``{"key": <key without its "{namespace}:" prefix>, "ttl": <ms, -1 = none>, "dump": <base64 DUMP>}``
per key. DUMP/RESTORE keep every type and encoding exactly; the target Redis must be the same
major version or newer (RDB format). Import renames each key into the target namespace (so a
namespace can also be copied under another name) and refuses a target namespace that holds
any key. RQ's jobs are not part of a namespace: drain the queue before moving.
Both scan the whole namespace (an operator tool, never an API request).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator

import orjson
from redis.client import NEVER_DECODE

from loop.errors import Conflict, ValidationError
from loop.store.base import RedisStore
from loop.tunables import EXPORT_FORMAT as FORMAT


def export_lines(store: RedisStore) -> Iterator[bytes]:
    """The namespace as JSON lines (header first); keys that vanish during the scan are skipped."""
    prefix = store.keys.prefix + ":"
    keys = sorted(store.r.scan_iter(match=store.keys.all_pattern(), count=1000))
    yield orjson.dumps({"loopExport": FORMAT, "namespace": store.keys.namespace, "keys": len(keys)})
    for key in keys:
        dump = store.r.execute_command("DUMP", key, **{NEVER_DECODE: True})
        if dump is None:
            continue
        ttl = int(store.r.execute_command("PTTL", key))
        yield orjson.dumps({"key": key[len(prefix):], "ttl": ttl if ttl > 0 else -1,
                            "dump": base64.b64encode(dump).decode()})


def import_lines(store: RedisStore, lines: Iterable[bytes | str]) -> int:
    """RESTORE every exported key into ``store``'s namespace; returns how many. Refuses (Conflict) a
    namespace that holds any key, and (ValidationError) a stream that is not an export."""
    it = iter(lines)
    try:
        header = orjson.loads(next(it))
    except (StopIteration, orjson.JSONDecodeError):
        raise ValidationError("not a Loop export: the first line must be its JSON header") from None
    if not isinstance(header, dict) or header.get("loopExport") != FORMAT:
        raise ValidationError(f"not a Loop export of format {FORMAT}")
    if next(store.r.scan_iter(match=store.keys.all_pattern(), count=1000), None) is not None:
        raise Conflict(f"namespace {store.keys.namespace!r} is not empty: import into an unused namespace")
    prefix = store.keys.prefix + ":"
    n = 0
    for line in it:
        if not line.strip():
            continue
        item = orjson.loads(line)
        ttl = int(item["ttl"])
        store.r.execute_command("RESTORE", prefix + item["key"], ttl if ttl > 0 else 0,
                                base64.b64decode(item["dump"]))
        n += 1
    return n
