"""``loop dev`` as a child process, for tests of the whole command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.redis_server import free_port

LOOP = [sys.executable, "-c", "import sys; from loop.cli import main; sys.argv[0] = 'loop'; main()"]


def start_dev(cwd: Path, env: dict[str, str], *args: str, port: int | None = None,
              workers: int = 1) -> tuple[subprocess.Popen[str], int]:
    """``loop dev --port <port or a free one> *args`` in ``cwd``, its output piped; ``(process, port)``."""
    port = port or free_port()
    # The Procfile's mcp process would otherwise take port + 2, which may be busy.
    env = {**env, "WEB_CONCURRENCY": str(workers), "LOOP_MCP_PORT": str(free_port())}
    for name in ("LOOP_API_KEY", "PORT", "LOOP_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([*LOOP, "dev", "--port", str(port), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, port


def wait_healthy(proc: subprocess.Popen[str], port: int, timeout: float = 60) -> dict[str, object]:
    """``GET /health``'s answer once the API under ``proc`` serves it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("loop dev never served /health:\n" + proc.communicate()[0])
