"""The Procfile's ``web`` process spreads keep-alive connections over its workers (``--reuse-port``),
and ``loop dev`` refuses a port that is already taken (``--reuse-port`` would share it silently)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from loop.devserver import DirLock, port_taken
from tests.concurrency import at_once
from tests.loop_dev import start_dev, wait_healthy
from tests.processes import children_by_parent, cmdline, descendants

CONNECTIONS = 32


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def _established_to(port: int) -> dict[str, int]:
    """inode -> 1 for every established TCP connection whose local port is ``port`` (/proc/net/tcp*)."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                    out[cols[9]] = 1
    return out


def _gunicorn_master(root: int) -> int:
    """The gunicorn arbiter under ``loop dev`` (the web process, exec'd by its shell): the gunicorn
    whose parent is not one."""
    parent = {child: pid for pid, children in children_by_parent().items() for child in children}
    gunicorns = {pid for pid in descendants(root) if "gunicorn" in cmdline(pid)}
    masters = [pid for pid in gunicorns if parent.get(pid) not in gunicorns]
    assert len(masters) == 1, masters
    return masters[0]


def _dev(tmp_path: Path, redis_url: str, workers: int, port: int | None = None) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "REDIS_URL": redis_url, "LOOP_NAMESPACE": f"t-{uuid.uuid4().hex[:12]}"}
    return start_dev(tmp_path, env, "--only", "web", port=port, workers=workers)


@pytest.mark.slow
def test_a_burst_of_keep_alive_connections_is_spread_over_both_web_workers(tmp_path, redis_url):
    # With one shared listening socket, whichever worker wins each accept keeps the connection: a
    # burst can land all on one worker (seen: 31 and 32 of 32), halving capacity while they live.
    proc, port = _dev(tmp_path, redis_url, workers=2)
    try:
        wait_healthy(proc, port)
        master = _gunicorn_master(proc.pid)
        deadline = time.monotonic() + 30
        while len(workers := children_by_parent().get(master, [])) < 2:
            assert time.monotonic() < deadline, "gunicorn did not start 2 workers"
            time.sleep(0.1)
        def connect() -> http.client.HTTPConnection:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/health")
            conn.getresponse().read()  # served: accepted by a worker, and kept alive
            return conn

        conns = at_once([connect] * CONNECTIONS)  # all at once, as a fleet of agents starting
        assert len(conns) == CONNECTIONS
        established = _established_to(port)
        held = sorted(sum(1 for inode in _socket_inodes(w) if inode in established) for w in workers)
        assert sum(held) == CONNECTIONS
        # The kernel hashes each connection to a worker's socket: 32 fair coin flips. A worker with
        # fewer than 6 of them happens about once in 10,000 runs.
        assert held[0] >= 6, held
        for conn in conns:
            conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_loop_dev_refuses_a_port_another_server_listens_on_even_with_reuse_port(tmp_path, redis_url):
    with socket.socket() as other:  # as another gunicorn's worker binds it: SO_REUSEPORT
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("0.0.0.0", 0))  # noqa: S104 - the Procfile's web binds all interfaces
        other.listen()
        port = other.getsockname()[1]
        assert port_taken(port)
        proc, _ = _dev(tmp_path, redis_url, workers=1, port=port)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {port} is in use" in output
    assert not port_taken(port)  # closed: free again
    lock = DirLock(tmp_path / ".loop")  # the refused run gave its data directory back
    lock.acquire()
    lock.release()
