"""``loop dev``: Procfile parsing, the runner, the embedded Redis and the whole command."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from loop.devserver import (
    DevError,
    DirLock,
    EmbeddedRedis,
    ProcfileEntry,
    ProcfileRunner,
    _group_has_live_member,
    ensure_api_key,
    parse_procfile,
    ping,
    select,
    shell_command,
)
from tests.loop_dev import start_dev, wait_healthy
from tests.processes import cmdline, descendants
from tests.redis_server import free_port


# ---------------------------------------------------------------------------- Procfile
def test_a_procfile_is_parsed_into_named_commands_skipping_comments_and_blank_lines():
    text = "# processes\n\nweb: gunicorn api.app:app --bind 0.0.0.0:${PORT:-5667}\nworker:python -m workers\n"
    assert parse_procfile(text) == [
        ProcfileEntry("web", "gunicorn api.app:app --bind 0.0.0.0:${PORT:-5667}"),
        ProcfileEntry("worker", "python -m workers"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("web gunicorn\n", "Procfile:1: expected 'name: command'"),
    ("web: a\nweb: b\n", "Procfile:2: process 'web' is defined twice"),
    ("# nothing\n", "Procfile defines no process"),
])
def test_a_malformed_procfile_is_rejected_with_its_line_number(text, message):
    with pytest.raises(DevError, match=message):
        parse_procfile(text)


def test_only_and_skip_choose_processes_and_unknown_names_are_errors():
    entries = parse_procfile("web: a\nworker: b\nmcp: c\n")
    assert [e.name for e in select(entries, [], ["worker"])] == ["web", "mcp"]
    assert [e.name for e in select(entries, ["web", "mcp"], ["mcp"])] == ["web"]
    with pytest.raises(DevError, match="unknown process nope"):
        select(entries, ["nope"], [])


def test_simple_commands_are_execed_but_compound_ones_keep_their_shell():
    assert shell_command("gunicorn api.app:app --bind 0.0.0.0:${PORT:-5667}").startswith("exec gunicorn")
    assert shell_command("a && b") == "a && b"
    assert shell_command("echo $(date)") == "echo $(date)"
    assert shell_command("FOO=1 python -m workers") == "FOO=1 python -m workers"
    assert shell_command("exit 4") == "exit 4"


# ---------------------------------------------------------------------------- API key and lock
def test_the_api_key_is_generated_once_into_a_private_file(tmp_path):
    data = tmp_path / ".loop"
    key, created = ensure_api_key(data)
    assert created and key.startswith("loop_") and len(key) == 69
    assert stat.S_IMODE((data / "api-key").stat().st_mode) == 0o600
    assert ensure_api_key(data) == (key, False)


def test_a_second_loop_dev_on_the_same_data_dir_is_refused(tmp_path):
    first = DirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DevError, match=f"pid {os.getpid()}"):
            DirLock(tmp_path).acquire()
    finally:
        first.release()
    second = DirLock(tmp_path)
    second.acquire()  # released locks are reusable
    second.release()


# ---------------------------------------------------------------------------- embedded Redis
def test_the_embedded_redis_keeps_its_data_across_restarts(tmp_path):
    data = tmp_path / ".loop"
    server = EmbeddedRedis(data).start()
    redis.Redis.from_url(server.url).set("survivor", "yes")
    assert server.stop() is True
    assert (data / "dump.rdb").exists() and not ping(server.url)
    again = EmbeddedRedis(data).start()
    try:
        assert redis.Redis.from_url(again.url).get("survivor") == b"yes"
    finally:
        again.stop()


def test_an_orphaned_embedded_redis_is_shut_down_before_a_new_one_starts(tmp_path):
    orphan = EmbeddedRedis(tmp_path).start()
    proc = orphan.proc
    assert proc is not None
    redis.Redis.from_url(orphan.url).set("k", "v")
    fresh = EmbeddedRedis(tmp_path).start()  # as if the first owner had been SIGKILLed
    try:
        assert proc.wait(10) == 0
        assert redis.Redis.from_url(fresh.url).get("k") == b"v"
    finally:
        fresh.stop()


# ---------------------------------------------------------------------------- runner
def _runner(procfile: str, grace: float = 5.0) -> tuple[ProcfileRunner, io.StringIO]:
    out = io.StringIO()
    env = {"PATH": os.environ["PATH"]}
    return ProcfileRunner(parse_procfile(procfile), env, Path.cwd(), out=out, grace=grace), out


def test_when_one_process_fails_the_others_are_stopped_and_the_failure_reported():
    runner, out = _runner("sleeper: sleep 30\ncrasher: echo going down; exit 3\n")
    started = time.monotonic()
    runner.start()
    runner.wait(poll=0.05)
    runner.stop()
    assert time.monotonic() - started < 10
    assert [c.entry.name for c in runner.failed()] == ["crasher"]
    assert all(c.proc is not None and c.proc.returncode is not None for c in runner.children)
    text = out.getvalue()
    assert "crasher | going down" in text and "crasher | exited with code 3" in text


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period():
    runner, out = _runner("stubborn: trap '' TERM; echo ready; sleep 30\n", grace=0.5)
    runner.start()
    deadline = time.monotonic() + 5
    while "stubborn | ready" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.request_stop()
    runner.wait()
    started = time.monotonic()
    runner.stop()
    assert time.monotonic() - started < 5
    assert "did not stop in time: SIGKILL" in out.getvalue()
    pid = runner.children[0].proc.pid
    deadline = time.monotonic() + 5  # the killed grandchild is reaped by init, asynchronously
    while _group_has_live_member(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_has_live_member(pid)
    assert runner.failed() == []  # stopped on request, not a failure


# ---------------------------------------------------------------------------- the command
def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2] != "Z"


@contextlib.contextmanager
def ctrl_c_at_end(proc: subprocess.Popen[str]) -> Iterator[list[str]]:
    """Run the body with ``proc`` (``loop dev``) up, then Ctrl-C it and expect a clean exit; the list
    gets its output. A failing body kills the process instead."""
    output: list[str] = []
    try:
        yield output
        proc.send_signal(signal.SIGINT)
        output.append(proc.communicate(timeout=60)[0])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output


@pytest.mark.slow
@pytest.mark.parametrize("redis_env", ["unset", "unreachable"])
def test_loop_dev_without_a_redis_runs_an_embedded_one_and_ctrl_c_stops_everything(tmp_path, redis_env):
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if redis_env == "unreachable":
        env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    proc, port = start_dev(tmp_path, env)
    with ctrl_c_at_end(proc) as stopped:
        assert wait_healthy(proc, port)["ok"] is True
        family = descendants(proc.pid)
        assert any("redis-server" in cmdline(p) for p in family)
        assert any("gunicorn" in cmdline(p) for p in family)
        assert any("workers" in cmdline(p) for p in family)
        assert stat.S_IMODE((tmp_path / ".loop" / "api-key").stat().st_mode) == 0o600
        url = f"unix://{tmp_path / '.loop' / 'redis.sock'}"
        assert ping(url)
    output = stopped[0]
    key = (tmp_path / ".loop" / "api-key").read_text().strip()
    assert key in output and "embedded Redis saved and stopped" in output
    if redis_env == "unreachable":
        assert "does not answer PING: using the embedded Redis" in output
    assert [p for p in family if _alive(p)] == []
    assert not ping(url) and (tmp_path / ".loop" / "dump.rdb").exists()


@pytest.mark.slow
def test_loop_dev_uses_a_reachable_redis_url_without_starting_an_embedded_one(tmp_path, redis_url):
    env = {**os.environ, "REDIS_URL": redis_url, "LOOP_NAMESPACE": f"t-{uuid.uuid4().hex[:12]}"}
    proc, port = start_dev(tmp_path, env, "--skip", "worker")
    with ctrl_c_at_end(proc) as stopped:
        assert wait_healthy(proc, port)["ok"] is True
        family = descendants(proc.pid)
        assert not any("redis-server" in cmdline(p) for p in family)
    output = stopped[0]
    assert "(from REDIS_URL)" in output and "worker |" not in output
    assert not (tmp_path / ".loop" / "redis.sock").exists()
    assert [p for p in family if _alive(p)] == []


def test_loop_dev_exits_non_zero_when_a_process_dies(tmp_path, redis_url):
    (tmp_path / "Procfile").write_text("idle: sleep 30\nbroken: exit 4\n")
    env = {**os.environ, "REDIS_URL": redis_url}
    proc, _ = start_dev(tmp_path, env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert "failed: broken (code 4)" in output and "idle" in output


# ---------------------------------------------------------------------------- the shipped process list
ROOT = Path(__file__).resolve().parents[1]


def test_the_top_level_procfile_is_the_process_list_shipped_in_the_package():
    from loop.devserver import PROCFILE

    assert (ROOT / "Procfile").read_text(encoding="utf-8") == PROCFILE
    assert [e.name for e in parse_procfile(PROCFILE)] == ["web", "worker", "mcp"]


def test_without_a_procfile_in_the_current_directory_loop_dev_runs_the_built_in_one(tmp_path, monkeypatch):
    from loop.cli.dev import find_procfile
    from loop.devserver import PROCFILE

    monkeypatch.chdir(tmp_path)
    assert find_procfile(None) == (PROCFILE, "Loop's built-in Procfile", tmp_path)
    (tmp_path / "Procfile").write_text("own: sleep 1\n")
    assert find_procfile(None) == ("own: sleep 1\n", str(tmp_path / "Procfile"), tmp_path)
    with pytest.raises(DevError, match="no Procfile at nope"):
        find_procfile("nope")


def test_a_process_that_dies_of_the_sigterm_sent_to_stop_it_is_reported_as_stopped_cleanly():
    runner, out = _runner("sleeper: sleep 30\nupset: trap 'exit 7' TERM; while :; do sleep 0.05; done\n", grace=5)
    runner.start()
    time.sleep(0.3)  # let the shell install its trap
    runner.request_stop()
    runner.wait()
    runner.stop()
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert "sleeper | stopped" in lines and "upset   | stopped (code 7)" in lines, lines


def test_the_banner_names_the_mcp_url_and_the_next_step(tmp_path):
    from loop.cli.dev import _banner

    out = io.StringIO()
    runner = ProcfileRunner(parse_procfile("web: a\nmcp: b\n"), {"LOOP_MCP_PORT": "7001"}, tmp_path, out=out)
    _banner(runner, runner.entries, 7000, tmp_path / ".loop", "loop_k", created=True, from_env=False)
    text = out.getvalue()
    assert "MCP for agents on http://localhost:7001/mcp" in text
    assert f'loop auth login --url http://localhost:7000 --key "$(cat {tmp_path}/.loop/api-key)"' in text
    out.truncate(0)
    runner.entries = parse_procfile("web: a\n")
    _banner(runner, runner.entries, 7000, tmp_path, "loop_k", created=False, from_env=True)
    assert "MCP" not in out.getvalue() and '--key "$LOOP_API_KEY"' in out.getvalue()


@pytest.mark.slow
def test_the_api_under_loop_dev_leaves_gunicorns_per_user_control_socket_alone(tmp_path, redis_url):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "REDIS_URL": redis_url, "LOOP_NAMESPACE": f"t-{uuid.uuid4().hex[:12]}"}
    env.pop("XDG_RUNTIME_DIR", None)  # gunicorn's default socket is then ~/.gunicorn/gunicorn.ctl
    proc, port = start_dev(tmp_path, env, "--only", "web")
    with ctrl_c_at_end(proc):
        assert wait_healthy(proc, port)["ok"] is True
        time.sleep(0.5)  # the arbiter is up: a control socket would exist by now
        assert not (home / ".gunicorn").exists()
