"""``LOOP_WAIT_REPLICAS``: a write is acknowledged only once that many replicas hold it.

Redis replication is asynchronous: without this, a write the master acknowledged may be missing
from the replica Sentinel promotes after a crash. With it, every successful write request (any
POST/PUT/PATCH/DELETE, and ``GET /api/dispatch/next``, which claims) ends with a ``WAIT``; when
fewer replicas confirm within ``REPLICA_WAIT_MS`` the answer becomes 503 with ``Retry-After``
(the write may not survive a failover: retry it; an ``Idempotency-Key`` replays the stored answer).
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from loop.store.base import RedisStore
from loop.tunables import REDIS_RETRY_AFTER_SECONDS, REPLICA_WAIT_MS

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: GET routes that write (a claim).
WRITING_GETS = frozenset({"/api/dispatch/next"})


class ReplicaWait:
    """Falcon middleware; placed before Idempotency so that one stores the real answer first."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.wanted = store.settings.wait_replicas

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        if not self.wanted or not (req.method in WRITES or (req.method == "GET" and req.path in WRITING_GETS)):
            return
        if not 200 <= int(str(resp.status).split()[0]) < 300:
            return
        if self.store.confirm_replicated():
            return
        resp.status = falcon.HTTP_503
        resp.content_type = "application/json"
        resp.set_header("Retry-After", str(REDIS_RETRY_AFTER_SECONDS))
        resp.text = None
        resp.media = None
        resp.data = orjson.dumps({"error": f"The write was not confirmed by {self.wanted} replica(s) within "
                                           f"{REPLICA_WAIT_MS} ms (LOOP_WAIT_REPLICAS): it may not survive a "
                                           "failover. Retry the request."})
