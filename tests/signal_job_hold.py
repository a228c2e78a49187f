"""Test-only: hold the signal job at a named point so a test can SIGKILL its work-horse there.

Imported first by a test's worker process (``python -c "import tests.signal_job_hold; ..."``),
it replaces :data:`workers.signals.checkpoint`; forked work-horses inherit it. ``HOLD_ENV``
names a directory: when ``<dir>/<point>`` exists the job writes its pid to ``<dir>/<point>.pid``
and waits until ``<dir>/<point>`` is removed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import workers.signals

HOLD_ENV = "LOOP_TEST_SIGNAL_JOB_HOLD"


def hold(point: str) -> None:
    folder = os.environ.get(HOLD_ENV)
    if not folder:
        return
    gate = Path(folder) / point
    if not gate.exists():
        return
    # Written aside then renamed: the test waits for the file and must never read it empty.
    tmp = Path(folder, f"{point}.pid.tmp")
    tmp.write_text(str(os.getpid()))
    tmp.rename(Path(folder, f"{point}.pid"))
    while gate.exists():
        time.sleep(0.02)


workers.signals.checkpoint = hold
