"""Real Redis deployments for the scale-out tests: a 3-master Redis Cluster and a Sentinel setup,
started from the ``redis-server`` binary (Sentinel is ``redis-server --sentinel``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from redis.cluster import key_slot

from tests.redis_server import free_port, redis_binary


def _wait(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _spawn(port: int, workdir: str, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir, "--daemonize", "no", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping()), f"redis-server on {port}")
    return proc


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


@dataclass
class Cluster:
    """Three masters owning a third of the slots each (no replicas: the tests need slots, not failover)."""

    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    dir: str = ""

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> Cluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Cluster:
        self.dir = tempfile.mkdtemp(prefix="loop-cluster-")
        self.ports = [cluster_port() for _ in range(3)]
        for port in self.ports:
            self.procs.append(_spawn(port, self.dir, "--cluster-enabled", "yes",
                                     "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000"))
        nodes = [redis.Redis(port=p, decode_responses=True) for p in self.ports]
        third = 16384 // 3
        bounds = [(0, third - 1), (third, 2 * third - 1), (2 * third, 16383)]
        for node, (lo, hi) in zip(nodes, bounds, strict=True):
            node.execute_command("CLUSTER ADDSLOTS", *range(lo, hi + 1))  # ADDSLOTSRANGE needs Redis 7
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        _wait(lambda: all(n.cluster("INFO")["cluster_state"] == "ok" for n in nodes), "cluster_state:ok")
        # Every node must know every other before clients read the slot map from any of them.
        _wait(lambda: all(len(n.execute_command("CLUSTER SLOTS")) == 3 for n in nodes), "the full slot map")
        return self

    def master_of(self, key: str) -> int:
        """Index (0-2) of the master owning ``key``'s slot."""
        return min(key_slot(key.encode()) // (16384 // 3), 2)

    def stop(self) -> None:
        _stop(self.procs)
        shutil.rmtree(self.dir, ignore_errors=True)


def namespaces_on_different_masters(cluster: Cluster, count: int = 2) -> list[str]:
    """``count`` namespace names whose ``{namespace}`` slots belong to different masters."""
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"ns{i}"
        found.setdefault(cluster.master_of("{" + name + "}"), name)
        if len(found) == count:
            return list(found.values())
    raise AssertionError("no namespaces on distinct masters")


@dataclass
class SentinelSetup:
    """A master, one replica and three sentinels watching them as ``loop-master``."""

    service: str = "loop-master"
    master_port: int = 0
    replica_port: int = 0
    sentinel_ports: list[int] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    dir: str = ""

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> SentinelSetup:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> SentinelSetup:
        self.dir = tempfile.mkdtemp(prefix="loop-sentinel-")
        self.master_port, self.replica_port = free_port(), free_port()
        # No 5 s wait before the replica's first sync (redis' default diskless delay).
        self.procs[self.master_port] = _spawn(self.master_port, self.dir, "--repl-diskless-sync-delay", "0")
        self.procs[self.replica_port] = _spawn(self.replica_port, self.dir, "--replicaof", "127.0.0.1",
                                               str(self.master_port))
        replica = redis.Redis(port=self.replica_port, decode_responses=True)
        _wait(lambda: replica.info("replication").get("master_link_status") == "up", "the replica's first sync")
        for _ in range(3):
            port = free_port()
            conf = f"{self.dir}/sentinel-{port}.conf"
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {self.service} 127.0.0.1 {self.master_port} 2\n"
                        f"sentinel down-after-milliseconds {self.service} 1000\n"
                        f"sentinel failover-timeout {self.service} 5000\n")
            self.procs[port] = subprocess.Popen([redis_binary(), conf, "--sentinel"],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.sentinel_ports.append(port)
        for port in self.sentinel_ports:
            _wait(lambda p=port: redis.Redis(port=p).execute_command(  # type: ignore[misc]
                "SENTINEL", "get-master-addr-by-name", self.service) is not None, f"sentinel on {port}")
        return self

    def kill_master(self) -> None:
        """SIGKILL the current master (no shutdown save: what a crashed host looks like)."""
        proc = self.procs.pop(self.master_port)
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        _stop(list(self.procs.values()))
        shutil.rmtree(self.dir, ignore_errors=True)

