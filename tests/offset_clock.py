"""Test-only: a clock the end-to-end test moves by writing a file, installed in live server processes.

Imported first by the test's gunicorn app (``tests.offset_clock:app``) and worker
(``python -c "import tests.offset_clock; ..."``), it replaces the seam
:func:`loop.runtime.process_clock` with :class:`OffsetClock` on the file named by ``CLOCK_ENV``;
forked work-horses inherit it. Production code reads no test variable (tests/test_structure.py).
"""

from __future__ import annotations

import os
import time

import loop.runtime
from loop.clock import Clock
from loop.settings import Settings

CLOCK_ENV = "LOOP_TEST_CLOCK_FILE"
#: The worker command with the clock installed first.
WORKER = "import sys, tests.offset_clock; from workers.__main__ import main; sys.exit(main())"


class OffsetClock:
    """The system clock plus an offset in ms read from ``path`` at every call (missing/empty: 0)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def now_ms(self) -> int:
        try:
            with open(self.path) as fh:
                offset = int(fh.read().strip() or 0)
        except FileNotFoundError:
            offset = 0
        return time.time_ns() // 1_000_000 + offset


def process_clock(settings: Settings) -> Clock:
    path = os.environ.get(CLOCK_ENV)
    return OffsetClock(path) if path else loop.runtime.SystemClock()


loop.runtime.process_clock = process_clock


def __getattr__(name: str) -> object:
    """``tests.offset_clock:app`` for gunicorn: the stock app, built after the clock is installed."""
    if name == "app":
        import api.app

        return api.app.app
    raise AttributeError(name)
