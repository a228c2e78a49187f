"""What the process sends to Redis, counted where it leaves: on the connection."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from redis.connection import AbstractConnection


def sent_alone(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the commands sent from now on one at a time, each its own round trip: a client's
    direct command, a script call (``loop.scripts.Script`` sends on a pooled connection, not through
    ``Redis.execute_command``), a pipeline's WATCH. Not listed: a pipeline's queued commands (they go
    out packed together, ``send_packed_command``), nor what redis-py sends by itself on a connection
    (the handshake of a new one, a health-check PING)."""
    sent: list[str] = []
    own: Counter[int] = Counter()  # connections in their handshake or health check (they nest)
    real_send = AbstractConnection.send_command

    def send_command(self: AbstractConnection, *args: Any, **kw: Any) -> None:
        if not own[id(self)]:
            sent.append(str(args[0]))
        real_send(self, *args, **kw)

    def by_redis_py(name: str) -> None:
        real = getattr(AbstractConnection, name)

        def quiet(self: AbstractConnection, *args: Any, **kw: Any) -> Any:
            own[id(self)] += 1
            try:
                return real(self, *args, **kw)
            finally:
                own[id(self)] -= 1

        monkeypatch.setattr(AbstractConnection, name, quiet)

    by_redis_py("on_connect_check_health")
    by_redis_py("check_health")
    monkeypatch.setattr(AbstractConnection, "send_command", send_command)
    return sent
