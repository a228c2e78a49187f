"""The RQ worker process: ``python -m workers`` (the Procfile's ``worker``).

Reads settings from the environment, listens on the Loop queue of its namespace, runs the
periodic jobs of :data:`workers.runner.PERIODIC` and survives Redis outages
(:mod:`workers.supervisor`).
"""

from __future__ import annotations

import logging
import sys

from loop.errors import ConfigError
from loop.settings import Settings
from workers.recovery import Recovery


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
        recovery = Recovery.from_env()
    except ConfigError as exc:
        print(f"loop worker: {exc.message}", file=sys.stderr)
        return 2
    from workers.supervisor import Supervisor

    Supervisor(settings, recovery).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
