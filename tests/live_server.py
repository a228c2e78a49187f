"""A live Loop for client tests: gunicorn serving ``api.app:app`` plus an RQ worker
(``python -m workers``) on a free loopback port, in a unique ``LOOP_NAMESPACE`` of the test
Redis. Tear-down stops both processes and deletes the namespace's keys and the RQ keys of its
own queue.

Use one per test module::

    from tests.live_server import live_server_fixture
    live = live_server_fixture()              # module-scoped fixture named ``live``

    def test_something(live):
        client = live.client()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import API_KEY
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class LiveServer:
    url: str
    api_key: str
    namespace: str
    redis_url: str
    queue: str
    env: dict[str, str]
    """Environment for child processes that should talk to this server (CLI, runner)."""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def client(self, **kw: Any) -> Any:
        from loop.client import LoopClient

        kw.setdefault("max_retries", 0)
        return LoopClient(self.url, kw.pop("api_key", self.api_key), **kw)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.logs if p.exists())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def cleanup(self) -> None:
        r = self.redis()
        from loop.keys import Keys

        # Our namespace, plus the RQ queue/registry keys of our own queue (jobs expire alone).
        patterns = [Keys(self.namespace).all_pattern(), f"rq:*:{self.queue}", f"rq:*:{self.queue}:*"]
        for pattern in patterns:
            keys = list(r.scan_iter(match=pattern, count=1000))
            if keys:
                r.unlink(*keys)


def _wait_healthy(server: LiveServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in server.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"live server process exited ({proc.returncode}):\n{server.log_text()}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"live server did not become healthy:\n{server.log_text()}")


def start_live_server(redis_url: str, extra_env: dict[str, str] | None = None, workers: int = 1,
                      app: str = "api.app:app", worker_code: str | None = None) -> LiveServer:
    """One gunicorn worker with threads by default: each worker process imports and compiles the
    prompt engine (seconds of CPU), and threads serve concurrent requests well enough for tests.
    ``app``/``worker_code`` (run with ``python -c``) replace the stock entry points, e.g. to install
    a test seam first (tests/offset_clock.py)."""
    namespace = f"t-live-{uuid.uuid4().hex[:10]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue = f"loop-{namespace}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOP_", "GITHUB_", "SENTRY_", "POSTHOG_"))}
    env.update({
        "LOOP_API_KEY": API_KEY, "REDIS_URL": redis_url, "LOOP_NAMESPACE": namespace, "LOOP_QUEUE": queue,
        "PORT": str(port), "LOOP_URL": url, "PYTHONUNBUFFERED": "1",
        "GITHUB_WEBHOOK_SECRET": "gh-secret", "SENTRY_CLIENT_SECRET": "sentry-secret",
        "POSTHOG_WEBHOOK_SECRET": "posthog-secret",
    })
    env.update(extra_env or {})
    logdir = Path(tempfile.mkdtemp(prefix="loop-live-"))
    server = LiveServer(url, API_KEY, namespace, redis_url, queue,
                        env={**env, "LOOP_API_URL": url, "LOOP_CONFIG_DIR": str(logdir / "config")})
    commands = {
        "web": [str(BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--threads", "4", "--graceful-timeout", "5", "--timeout", "60"],
        "worker": [sys.executable, "-c", worker_code] if worker_code else [sys.executable, "-m", "workers"],
    }
    try:
        for name, cmd in commands.items():
            log = logdir / f"{name}.log"
            server.logs.append(log)
            with log.open("wb") as fh:
                server.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT))
        _wait_healthy(server)
    except BaseException:
        server.stop()
        server.cleanup()
        raise
    return server


def live_server_fixture(extra_env: dict[str, str] | None = None, workers: int = 1) -> Callable[..., Any]:
    """A module-scoped fixture (name it ``live``) yielding a started :class:`LiveServer`."""

    @pytest.fixture(scope="module")
    def live(redis_url: str) -> Iterator[LiveServer]:
        server = start_live_server(redis_url, extra_env, workers)
        try:
            yield server
        finally:
            server.stop()
            server.cleanup()

    return live


@dataclass
class Cli:
    """Runs ``loop`` commands in-process (click's CliRunner) against a live server, with the
    config directory in a temporary path."""

    live: LiveServer
    config_dir: Path
    env: dict[str, str | None]

    def __call__(self, *args: str, input: str | None = None, code: int = 0, **env: str | None) -> Any:
        from click.testing import CliRunner

        from loop.cli import main

        result = CliRunner().invoke(main, list(args), input=input, env={**self.env, **env}, catch_exceptions=False)
        assert result.exit_code == code, (
            f"loop {' '.join(args)} exited {result.exit_code}, wanted {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self(*args, "--json", **kw).stdout)

    def error(self, *args: str, code: int = 1, **env: str | None) -> str:
        """The error of a failing command, asserting it is exactly one line on stderr."""
        result = self(*args, code=code, **env)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        return str(lines[0])


def make_cli(live: LiveServer, config_dir: Path) -> Cli:
    env: dict[str, str | None] = {"LOOP_API_URL": live.url, "LOOP_API_KEY": live.api_key,
                                  "LOOP_CONFIG_DIR": str(config_dir), "LOOP_PROJECT": None,
                                  "HOME": str(config_dir)}
    return Cli(live, config_dir, env)
