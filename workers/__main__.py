"""The RQ worker process: ``python -m workers`` (the Procfile's ``worker``).

Reads settings from the environment, listens on the Loop queue of its namespace, runs the
periodic jobs of :data:`workers.runner.PERIODIC` and survives Redis outages
(:mod:`workers.supervisor`).
"""

from __future__ import annotations

import sys

from loop import logs
from loop.errors import ConfigError
from loop.settings import Settings
from workers.recovery import Recovery


def main() -> int:
    try:
        settings = Settings.from_env()
        recovery = Recovery.from_env()
    except ConfigError as exc:
        print(f"loop worker: {exc.message}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    from workers.supervisor import Supervisor

    Supervisor(settings, recovery).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
