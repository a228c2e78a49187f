"""A wheel of Loop, installed outside the checkout, runs: ``loop dev`` from an empty directory serves /health.

Offline: the wheel is built from a copy of the sources with this interpreter's setuptools
(``--no-build-isolation``) and installed ``--no-deps --no-index`` into a fresh venv, whose
dependencies come from this interpreter's site-packages through a ``.pth`` line (which adds
the directory only: its own ``.pth`` files, e.g. an editable install of the checkout, stay inert).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from tests.loop_dev import wait_healthy
from tests.redis_server import free_port
from tests.test_devserver import ctrl_c_at_end

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("loop", "api", "workers", "pyproject.toml", "README.md", "Procfile")


def _run(*args: str, cwd: Path | None = None) -> str:
    # Without PYTHONPATH: a checkout on it (with an egg-info) would count as "loop already installed".
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600, cwd=cwd, env=_clean_env())
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with Loop installed from a wheel (not editable); returns its bin directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(ROOT / name, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp / "dist"), str(src))
    wheel = next((tmp / "dist").glob("loop-*.whl"))
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    _run(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-index", str(wheel))
    site = Path(_run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp).strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_loop_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    # The dependencies' console scripts the process list calls (pip would have made them).
    gunicorn = venv / "bin" / "gunicorn"
    gunicorn.write_text(f"#!{venv / 'bin' / 'python'}\nfrom gunicorn.app.wsgiapp import run\nrun()\n")
    gunicorn.chmod(0o755)
    return venv / "bin"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOOP_API_KEY", "PORT", "LOOP_URL")}
    return {**env, **extra}


@pytest.mark.slow
def test_the_installed_wheel_imports_loop_api_and_workers_from_the_venv_not_the_checkout(installed, tmp_path):
    code = "import loop, api, workers, loop.devserver as d; print(loop.__file__, api.__file__, workers.__file__)"
    paths = _run(str(installed / "python"), "-c", code, cwd=tmp_path).split()
    venv = str(installed.parent)
    assert all(p.startswith(venv) for p in paths), paths
    # Package data: Lua scripts and the seeded templates are in the wheel.
    files = _run(str(installed / "python"), "-c",
                 "import importlib.resources as r; print(sorted(p.name for p in r.files('loop').joinpath('lua').iterdir()))",
                 cwd=tmp_path)
    assert ".lua" in files


@pytest.mark.slow
def test_loop_dev_from_an_empty_directory_after_a_plain_install_serves_health_and_stops_cleanly(
        installed, tmp_path, redis_url):
    port = free_port()
    env = _clean_env(REDIS_URL=redis_url, LOOP_NAMESPACE=f"t-{uuid.uuid4().hex[:12]}", WEB_CONCURRENCY="1",
                     LOOP_MCP_PORT=str(free_port()), HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([str(installed / "loop"), "dev", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with ctrl_c_at_end(proc) as stopped:
        assert wait_healthy(proc, port)["ok"] is True
    output = stopped[0]
    assert "Loop's built-in Procfile" in output
    for name in ("web", "worker", "mcp"):
        assert f"{name:<6} | stopped\n" in output, output
