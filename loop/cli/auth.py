"""``loop auth login|logout|status`` and ``loop config set|get|list|unset``."""

from __future__ import annotations

from typing import Any

import click

from loop.cli.common import (
    CONFIG_KEYS,
    OUTPUTS,
    CliError,
    command,
    config_key,
    config_path,
    describe,
    load_config,
    mask,
    resolve,
    save_config,
)
from loop.cli.output import Out
from loop.client import LoopClient, LoopClientError


@click.group()
def auth() -> None:
    """Log in to a Loop server (stores the URL and API key in ~/.loop/config.json)."""


@auth.command()
@click.option("--url", help="Server URL (default: the configured one, else http://localhost:5667).")
@click.option("--key", "--token", "key", help="API key; prompted for (hidden) when omitted.")
@click.option("--no-verify", is_flag=True, help="Save without checking the key against the server.")
@command
def login(out: Out, url: str | None, key: str | None, no_verify: bool) -> None:
    """Save a server URL and API key, after checking that the server accepts them."""
    cfg = load_config()
    url = url or cfg.get("url") or resolve("url")[0]
    if not key:
        key = click.prompt("API key", hide_input=True).strip()
    if not key:
        raise CliError("an API key is required")
    if not no_verify:
        try:
            LoopClient(str(url), key, max_retries=0, timeout=10).issues.list(limit=1)
        except LoopClientError as exc:
            raise CliError(f"login failed: {describe(exc)}") from None
    cfg.update({"url": url, "api_key": key})
    path = save_config(cfg)
    out.done(f"Logged in to {url} (key {mask(key)}); saved to {path}", {"url": url, "config": str(path)})


@auth.command()
@command
def logout(out: Out) -> None:
    """Forget the saved API key."""
    cfg = load_config()
    had = cfg.pop("api_key", None) is not None
    save_config(cfg)
    out.done("Logged out" if had else "No saved API key", {"loggedOut": had})


@auth.command(name="status")
@command
def auth_status(out: Out) -> None:
    """Show which server and key are in use and whether the server accepts the key."""
    url, url_src = resolve("url")
    key, key_src = resolve("api_key")
    info: dict[str, Any] = {"url": url, "urlSource": url_src, "key": mask(key), "keySource": key_src}
    try:
        LoopClient(str(url), key, max_retries=0, timeout=10).issues.list(limit=1)
        info["authenticated"], info["error"] = True, None
    except LoopClientError as exc:
        info["authenticated"], info["error"] = False, describe(exc)
    out.detail(info, [("Server", "url"), ("  from", "urlSource"), ("API key", "key"), ("  from", "keySource"),
                      ("Authenticated", "authenticated"), ("Error", "error")])
    if not info["authenticated"]:
        raise SystemExit(1)


@click.group()
def config() -> None:
    """Read and write ~/.loop/config.json (LOOP_CONFIG_DIR overrides the directory)."""


@config.command(name="set")
@click.argument("key")
@click.argument("value")
@command
def config_set(out: Out, key: str, value: str) -> None:
    """Set KEY (url, api_key, project, author, output) to VALUE."""
    name = config_key(key)
    if name == "output" and value not in OUTPUTS:
        raise CliError(f"output must be one of {', '.join(OUTPUTS)}")
    if name == "url" and not value.startswith(("http://", "https://")):
        raise CliError("url must start with http:// or https://")
    cfg = load_config()
    cfg[name] = value
    save_config(cfg)
    shown = mask(value) if name == "api_key" else value
    out.done(f"{name} = {shown}", {name: shown})


@config.command(name="get")
@click.argument("key")
@command
def config_get(out: Out, key: str) -> None:
    """Print the effective value of KEY (environment, then config file)."""
    name = config_key(key)
    value, source = resolve(name)
    if value is None:
        raise CliError(f"{name} is not set")
    if out.is_json:
        out.json({"key": name, "value": value, "source": source})
    else:
        out.line(str(value))


@config.command(name="unset")
@click.argument("key")
@command
def config_unset(out: Out, key: str) -> None:
    """Remove KEY from the config file."""
    name = config_key(key)
    cfg = load_config()
    cfg.pop(name, None)
    save_config(cfg)
    out.done(f"{name} unset", {name: None})


@config.command(name="list")
@click.option("--show-secrets", is_flag=True, help="Print the API key in full.")
@command
def config_list(out: Out, show_secrets: bool) -> None:
    """List every config key with its effective value and source."""
    rows = []
    for name, help_text in CONFIG_KEYS.items():
        value, source = resolve(name)
        if name == "api_key" and not show_secrets:
            value = mask(value) if value else None
        rows.append({"key": name, "value": value, "source": source, "meaning": help_text})
    out.table(rows, [("Key", "key"), ("Value", "value"), ("Source", "source"), ("Meaning", "meaning")],
              raw={"path": str(config_path()), "data": rows})


def register(main: click.Group) -> None:
    main.add_command(auth)
    main.add_command(config)
