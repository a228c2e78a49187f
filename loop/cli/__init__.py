"""The ``loop`` command line. Each command group lives in its own module under ``loop.cli``
and is listed in :data:`COMMAND_MODULES`; each module exposes ``register(main)``."""

from __future__ import annotations

import importlib

import click

from loop import __version__

#: Modules adding commands; later issues append theirs.
COMMAND_MODULES: list[str] = ["loop.cli.dev", "loop.cli.auth", "loop.cli.issues", "loop.cli.workspace", "loop.cli.signals", "loop.cli.prompts", "loop.cli.dispatch", "loop.cli.admin", "loop.cli.agent", "loop.cli.demo"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="loop")
def main() -> None:
    """Loop: the work queue AI coding agents pull from."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main)
