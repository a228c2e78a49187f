"""``loop dev``: Redis (yours or an embedded one) plus every Procfile process, in one terminal."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlparse, urlunparse

import click

from loop.devserver import (
    PROCFILE,
    DevError,
    DirLock,
    EmbeddedRedis,
    ProcfileEntry,
    ProcfileRunner,
    ensure_api_key,
    install_signal_handlers,
    metrics_dir,
    parse_procfile,
    ping,
    port_taken,
    select,
)
from loop.errors import ConfigError
from loop.settings import DEFAULT_PORT, Settings


def find_procfile(explicit: str | None) -> tuple[str, str, Path]:
    """The process list to run: ``(text, source name, working directory)``.

    ``--procfile`` if given, else ``./Procfile`` (your own list), else the one shipped in the
    package (:data:`loop.devserver.PROCFILE`), which works after a plain ``pip install``.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise DevError(f"no Procfile at {path}")
    else:
        path = Path("Procfile")
        if not path.is_file():
            return PROCFILE, "Loop's built-in Procfile", Path.cwd()
    path = path.resolve()
    return path.read_text(encoding="utf-8"), str(path), path.parent


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunparse(parts._replace(netloc=netloc))


def _names(values: Sequence[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def child_env(base: Mapping[str, str], redis_url: str, api_key: str, port: int) -> dict[str, str]:
    env = dict(base)
    # Procfile commands say `gunicorn` and `python`: make them this interpreter's, even when
    # the virtualenv is not activated (`.venv/bin/loop dev`).
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", os.defpath)])
    env.update(REDIS_URL=redis_url, LOOP_API_KEY=api_key, PORT=str(port), PYTHONUNBUFFERED="1")
    return env


def run_dev(
    port: int | None,
    procfile: str | None,
    only: Sequence[str],
    skip: Sequence[str],
    data_dir: str,
    out: IO[str],
    colour: bool,
) -> int:
    """Run Loop until Ctrl-C or until a process dies; returns the exit status."""
    env = os.environ
    data = Path(data_dir)
    text, source, cwd = find_procfile(procfile)
    entries = select(parse_procfile(text, source), only, skip)
    try:
        port = port or int(env.get("PORT") or DEFAULT_PORT)
    except ValueError:
        raise ConfigError(f"PORT must be an integer, got {env.get('PORT')!r}") from None
    lock = DirLock(data)
    lock.acquire()  # first: a second `loop dev` here is told which process holds the directory
    runner = ProcfileRunner(entries, {}, cwd, out=out, colour=colour)
    embedded: EmbeddedRedis | None = None
    try:
        if any(e.name == "web" for e in entries) and port_taken(port):
            raise DevError(f"port {port} is in use (another Loop or server?): stop it or choose another with --port")
        created = False
        api_key = env.get("LOOP_API_KEY", "").strip()
        if not api_key:
            api_key, created = ensure_api_key(data)
        redis_url = env.get("REDIS_URL", "")
        if redis_url and ping(redis_url):
            runner.log("loop", f"Redis: {redact(redis_url)} (from REDIS_URL)")
        else:
            if redis_url:
                runner.log("loop", f"REDIS_URL {redact(redis_url)} does not answer PING: using the embedded Redis")
            embedded = EmbeddedRedis(data).start()
            redis_url = embedded.url
            runner.log("loop", f"Redis: embedded redis-server pid {embedded.proc.pid if embedded.proc else '?'}, "
                               f"data in {data}/ ({redis_url})")
        runner.env = {**child_env(env, redis_url, api_key, port), **metrics_dir(data, env)}
        Settings.from_env(runner.env)  # a bad variable fails here, naming it, not in every child
        runner.log("loop", f"processes: {', '.join(e.name for e in entries)} (from {source})")
        _banner(runner, entries, port, data, api_key, created, from_env=bool(env.get("LOOP_API_KEY", "").strip()))
        previous = install_signal_handlers(runner.request_stop)
        try:
            runner.start()
            runner.wait()
        finally:
            runner.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        if embedded is not None:
            saved = embedded.stop()
            runner.log("loop", "embedded Redis saved and stopped" if saved
                       else f"embedded Redis did not shut down cleanly; see {data}/redis.log")
        lock.release()
    failed = runner.failed()
    if failed:
        runner.log("loop", "failed: " + ", ".join(f"{c.entry.name} (code {c.died})" for c in failed))
        return 1
    return 0


def mcp_port(env: Mapping[str, str], port: int) -> int:
    """The port ``loop mcp --http`` picks in the Procfile: LOOP_MCP_PORT, else PORT+2, else 5669."""
    raw = env.get("LOOP_MCP_PORT", "")
    if raw.isdigit():
        return int(raw)
    return port + 2 if port + 2 <= 65535 else 5669


def _banner(runner: ProcfileRunner, entries: Sequence[ProcfileEntry], port: int, data: Path, key: str,
            created: bool, from_env: bool) -> None:
    base = f"http://localhost:{port}"
    runner.log("loop", f"Loop API on {base}  (Ctrl-C stops everything)")
    if any(e.name == "mcp" for e in entries):
        runner.log("loop", f"MCP for agents on http://localhost:{mcp_port(runner.env, port)}/mcp "
                           "(Bearer: an API key; docs/agents.md)")
    if from_env:
        key_ref = "$LOOP_API_KEY"
        runner.log("loop", "API key: LOOP_API_KEY from the environment")
    else:
        key_ref = f"$(cat {data}/api-key)"
        if created:
            runner.log("loop", f"generated an API key, stored in {data}/api-key (shown only this once):")
            runner.log("loop", f"  {key}")
        else:
            runner.log("loop", f"API key: in {data}/api-key")
    runner.log("loop", f'next, in another terminal: loop auth login --url {base} --key "{key_ref}"')
    runner.log("loop", f'or: curl -s -H "Authorization: Bearer {key_ref}" {base}/api/issues')


def register(main: click.Group) -> None:
    @main.command("dev")
    @click.option("--port", type=click.IntRange(1, 65535), default=None,
                  help=f"Port of the API (default: $PORT or {DEFAULT_PORT}).")
    @click.option("--procfile", type=click.Path(dir_okay=False), default=None,
                  help="Procfile to run (default: ./Procfile if there is one, else Loop's built-in one).")
    @click.option("--only", multiple=True, metavar="NAMES", help="Run only these processes (comma list).")
    @click.option("--skip", multiple=True, metavar="NAMES", help="Do not run these processes (comma list).")
    @click.option("--no-worker", is_flag=True, help="Shorthand for --skip worker.")
    @click.option("--data-dir", default=".loop", show_default=True,
                  help="Where the embedded Redis and the generated API key live.")
    def dev(port: int | None, procfile: str | None, only: tuple[str, ...], skip: tuple[str, ...],
            no_worker: bool, data_dir: str) -> None:
        """Run Loop locally: the API and the worker from the Procfile, on REDIS_URL if it answers,
        else on an embedded Redis persisting under ./.loop/."""
        skipped = _names(skip) + (["worker"] if no_worker else [])
        colour = (sys.stdout.isatty() and "NO_COLOR" not in os.environ) or bool(os.environ.get("FORCE_COLOR"))
        try:
            code = run_dev(port, procfile, _names(only), skipped, data_dir, sys.stdout, colour)
        except ConfigError as exc:
            click.echo(f"loop dev: {exc.message}", err=True)
            sys.exit(2)
        sys.exit(code)
