"""Connection errors across gunicorn's graceful reloads (HUP), with the shared socket and ``--reuse-port``.

With ``--reuse-port`` every worker owns its listening socket, and connections the kernel queued on it
but the worker had not accepted yet are reset when the worker exits (a HUP replaces every worker,
and so do a crash or a timeout kill), unless Linux (>= 5.14) hands them to the other workers:
``sysctl net.ipv4.tcp_migrate_req=1``. With the shared socket the arbiter keeps the queue across
workers. The setting on this host is printed.

Per mode, one server (2 gthread workers x 4 threads) on a private Redis; 16 client threads send
``GET /health`` for ``seconds`` (default 8), half on keep-alive connections and half on a new
connection per request, while the arbiter gets ``hups`` (default 3) SIGHUPs 2 s apart. Counts the
answers and the errors by kind.

Options: ``seconds``, ``hups``.
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from pathlib import Path

from benchmarks.harness import Bench, Request, Server


def run(bench: Bench) -> None:
    seconds, hups = float(bench.options.get("seconds") or 8), int(bench.options.get("hups") or 3)
    sysctl = Path("/proc/sys/net/ipv4/tcp_migrate_req")
    print(f"  net.ipv4.tcp_migrate_req = {sysctl.read_text().strip() if sysctl.exists() else 'absent'}")
    base = [a for a in bench.gunicorn_args if a != "--reuse-port"]
    for name, flags in (("shared socket", base), ("--reuse-port", [*base, "--reuse-port"])):
        with bench.server(gunicorn_args=flags) as srv:
            answered, errors = _reloads(srv, seconds, hups)
        print(f"  {name:<14} {answered:,} answered, errors: {errors or 'none'} ({hups} HUPs)", flush=True)
        bench.data.setdefault("reload", {})[name] = {"answered": answered, "errors": errors}


def _reloads(srv: Server, seconds: float, hups: int) -> tuple[int, dict[str, int]]:
    """16 clients on ``srv`` for ``seconds`` while its arbiter gets ``hups`` SIGHUPs: answers, errors by kind."""
    assert srv.proc is not None
    stop = time.monotonic() + seconds
    answered = [0]
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def client(keep: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < stop:
            try:
                if conn is None or not keep:
                    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                status, _ = srv.call(Request("GET", "/health"), conn)
                with lock:
                    answered[0] += status == 200
                if not keep:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn = None

    threads = [threading.Thread(target=client, args=(i % 2 == 0,), daemon=True) for i in range(16)]
    for t in threads:
        t.start()
    for _ in range(hups):
        time.sleep(2)
        srv.proc.send_signal(signal.SIGHUP)
    for t in threads:
        t.join()
    return answered[0], errors
