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


def _fake_checkout(tmp_path: Path, pytest_exit: int, lowest_exit: int = 0, ruff_exit: int = 0,
                   mypy_exit: int = 0) -> tuple[Path, dict[str, str]]:
    """A copy of .ci/run whose `python3 -m venv` makes stub pip/pytest/uv/ruff/mypy exiting as told
    (ruff and mypy leave a mark); the stub `uv venv` makes .venv-lowest, whose pytest exits with
    ``lowest_exit`` and leaves a mark."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    uv = (
        "#!/bin/sh\n"
        "if [ \"$1\" = venv ]; then mkdir -p .venv-lowest/bin; "
        f"printf '#!/bin/sh\\ntouch lowest-ran\\nexit {lowest_exit}\\n' > .venv-lowest/bin/pytest; "
        "chmod +x .venv-lowest/bin/pytest; fi\n"
        "echo \"$@\" >> uv-calls\n"
    )
    (bindir / "uv-stub").write_text(uv)
    fake = bindir / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        "mkdir -p .venv/bin\n"
        "printf '#!/bin/sh\\nexit 0\\n' > .venv/bin/pip\n"
        f"printf '#!/bin/sh\\nexit {pytest_exit}\\n' > .venv/bin/pytest\n"
        f"printf '#!/bin/sh\\ntouch ruff-ran\\nexit {ruff_exit}\\n' > .venv/bin/ruff\n"
        f"printf '#!/bin/sh\\ntouch mypy-ran\\nexit {mypy_exit}\\n' > .venv/bin/mypy\n"
        f"cp {bindir / 'uv-stub'} .venv/bin/uv\n"
        "chmod +x .venv/bin/pip .venv/bin/pytest .venv/bin/uv .venv/bin/ruff .venv/bin/mypy\n"
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
    # The lowest-versions step runs only after the main suite passed.
    assert (tmp_path / "lowest-ran").exists() == (pytest_exit == 0)


@pytest.mark.parametrize(("lowest_exit", "ci_exit"), [(0, 0), (1, 1), (3, 3), (5, 1)])
def test_ci_fails_when_the_suite_fails_on_the_lowest_allowed_dependency_versions(tmp_path, lowest_exit, ci_exit):
    script, env = _fake_checkout(tmp_path, 0, lowest_exit)
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == ci_exit, result.stderr
    assert (tmp_path / "lowest-ran").exists()
    assert "--resolution lowest-direct" in (tmp_path / "uv-calls").read_text()


@pytest.mark.parametrize(("ruff_exit", "mypy_exit", "ci_exit"), [(0, 0, 0), (1, 0, 1), (0, 1, 1), (2, 0, 2)])
def test_ci_fails_when_ruff_or_mypy_fails_after_the_suites_pass(tmp_path, ruff_exit, mypy_exit, ci_exit):
    script, env = _fake_checkout(tmp_path, 0, ruff_exit=ruff_exit, mypy_exit=mypy_exit)
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == ci_exit, result.stderr
    assert (tmp_path / "ruff-ran").exists()
    assert (tmp_path / "mypy-ran").exists() == (ruff_exit == 0)  # the first failing gate is CI's status
    if ci_exit:
        assert ("ruff" if ruff_exit else "mypy") + " failed" in result.stderr
