"""The quick start in the README and ``.ci/run`` stay the same two commands, and CI fails when it should."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[embedded]' && .venv/bin/loop dev"
TEST = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev,embedded]' && .venv/bin/pytest"


def test_the_readme_opens_with_the_run_and_the_test_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^ {4}(\S.*)$", text, flags=re.MULTILINE)
    assert commands[:2] == [RUN, TEST]
    assert text.index(TEST) < text.index("## ")  # before any section


def test_ci_runs_exactly_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST in script
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def _fake_checkout(tmp_path: Path, pytest_exit: int) -> tuple[Path, dict[str, str]]:
    """A copy of .ci/run whose `python3 -m venv` makes stub pip/pytest exiting as told."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    fake = bindir / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        "mkdir -p .venv/bin\n"
        "printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/pip\n"
        f"printf '#!/bin/sh\\nexit {pytest_exit}\\n' > .venv/bin/pytest\n"
        "chmod +x .venv/bin/pip .venv/bin/pytest\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    return tmp_path / ".ci" / "run", env


@pytest.mark.parametrize(("pytest_exit", "ci_exit"), [(0, 0), (1, 1), (2, 2), (5, 1)])
def test_ci_passes_only_when_pytest_passes_and_collecting_no_test_is_a_failure(tmp_path, pytest_exit, ci_exit):
    script, env = _fake_checkout(tmp_path, pytest_exit)
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == ci_exit, result.stderr
    if pytest_exit == 5:
        assert "collected no tests" in result.stderr
