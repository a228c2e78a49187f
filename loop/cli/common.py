"""What every ``loop`` command shares: the config file, the client, output modes and errors.

Config lives in ``~/.loop/config.json`` (``$LOOP_CONFIG_DIR/config.json`` when set), written
with mode 0600 because it holds an API key. The server URL and key resolve in this order:
environment (``LOOP_API_URL`` / ``LOOP_API_KEY``), then the config file, then the default URL.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from loop.cli.output import Out
from loop.client import LoopClient, LoopClientError, LoopConnectionError
from loop.client.transport import DEFAULT_URL

#: Settable config keys and what they mean (``loop config list`` shows them).
CONFIG_KEYS = {
    "url": "Loop server URL (LOOP_API_URL wins over it)",
    "api_key": "API key sent as the Bearer token (LOOP_API_KEY wins over it)",
    "project": "default project id for issues create, next, dispatch queue and work",
    "author": "author name used on comments and reviews",
    "output": "default output: table, plain or json",
}
ALIASES = {"token": "api_key", "key": "api_key", "api-key": "api_key", "apikey": "api_key", "apiKey": "api_key",
           "server": "url", "project_id": "project", "projectId": "project"}
OUTPUTS = ("table", "plain", "json")


class CliError(click.ClickException):
    """A one-line error on stderr and exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


# ------------------------------------------------------------------- config
def config_dir() -> Path:
    override = os.environ.get("LOOP_CONFIG_DIR")
    return Path(override) if override else Path.home() / ".loop"


def config_path() -> Path:
    return config_dir() / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object")
    return data


def save_config(data: dict[str, Any]) -> Path:
    """Write atomically with mode 0600 (the file holds a secret from its first byte)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
    return path


def config_key(name: str) -> str:
    key = ALIASES.get(name, name.replace("-", "_"))
    if key not in CONFIG_KEYS:
        raise CliError(f"unknown config key {name!r}; known keys: {', '.join(CONFIG_KEYS)}")
    return key


def resolve(name: str) -> tuple[Any, str]:
    """A setting's value and where it came from (env, config or default)."""
    env = {"url": "LOOP_API_URL", "api_key": "LOOP_API_KEY", "project": "LOOP_PROJECT"}.get(name)
    if env and os.environ.get(env):
        return os.environ[env], f"env {env}"
    cfg = load_config()
    if cfg.get(name) not in (None, ""):
        return cfg[name], f"config {config_path()}"
    if name == "url":
        return DEFAULT_URL, "default"
    return None, "unset"


def mask(secret: str | None) -> str:
    if not secret:
        return "-"
    return secret[:9] + "…" + secret[-4:] if len(secret) > 16 else secret[:3] + "…"


def client(**kw: Any) -> LoopClient:
    url, _ = resolve("url")
    key, _ = resolve("api_key")
    # A person is waiting: retry briefly (about a second in all) rather than the SDK's default.
    kw.setdefault("max_retries", 2)
    kw.setdefault("backoff_base", 0.25)
    try:
        return LoopClient(str(url), key, **kw)
    except LoopClientError as exc:
        raise CliError(exc.message) from None


def default_project(value: str | None) -> str | None:
    return value if value else resolve("project")[0]


def author_name(value: str | None, fallback: str = "loop-cli") -> str:
    if value:
        return value
    configured = resolve("author")[0]
    return str(configured) if configured else os.environ.get("USER") or fallback


# ------------------------------------------------------------------- commands
def describe(exc: LoopClientError) -> str:
    text = str(exc)
    if isinstance(exc, LoopConnectionError):
        text += " (is the server running? set LOOP_API_URL or run `loop auth login --url ...`)"
    elif exc.status == 401:
        text += " (set LOOP_API_KEY or run `loop auth login`)"
    return text


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--json``/``--plain`` and turn SDK errors into one readable line (exit 1).

    The wrapped function receives ``out`` (an :class:`Out`) as its first argument.
    """

    @click.option("--plain", "plain", is_flag=True, help="Plain tab-separated output (no colours, no boxes).")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
    @functools.wraps(fn)
    def wrapper(*args: Any, as_json: bool, plain: bool, **kwargs: Any) -> Any:
        if as_json and plain:
            raise click.UsageError("--json and --plain are mutually exclusive")
        mode = "json" if as_json else "plain" if plain else None
        if mode is None:
            try:
                configured = resolve("output")[0]
            except CliError:
                configured = None
            mode = configured if configured in OUTPUTS else "table"
        out = Out(mode)
        try:
            return fn(out, *args, **kwargs)
        except LoopClientError as exc:
            raise CliError(describe(exc)) from None
        except BrokenPipeError:  # `loop issues list | head`: the reader left; exit quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None

    return wrapper


def confirm_delete(yes: bool, what: str) -> None:
    """Ask "Delete <what>?" (aborting on no) unless ``--yes`` was given."""
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)


def parse_json(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise CliError(f"{what} is not valid JSON: {exc}") from None


def read_text(path: str) -> str:
    """A file's text (``-`` reads stdin)."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


_RELATIVE = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def when(value: str, now_ms: int | None = None) -> str:
    """``--not-before`` values: ``now``, a relative time (``90m``, ``48h``, ``2d``, ``+1w``) or an
    ISO 8601 timestamp; returned as ISO 8601 UTC (what the API takes)."""
    from loop.clock import iso, parse_iso

    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    text = value.strip().lstrip("+")
    if text == "now":
        return str(iso(now))
    match = _RELATIVE.fullmatch(text)
    if match:
        return str(iso(now + int(float(match["n"]) * _UNIT_SECONDS[match["unit"]] * 1000)))
    try:
        return str(iso(parse_iso(value.strip())))
    except ValueError:
        raise CliError(f"--not-before: {value!r} is neither a relative time (30m, 48h, 2d) nor an "
                       "ISO 8601 timestamp") from None


def page_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--limit`` (1-200, default 50) and ``--offset`` of a paginated list command."""
    fn = click.option("--offset", type=click.IntRange(0), default=0)(fn)
    return click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)(fn)
