"""Issue 18: `loop admin export` / `loop admin import` move a namespace between deployments (here:
from the suite's Redis to another redis-server, and under another namespace name)."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from loop.cli import main
from loop.clock import FrozenClock
from loop.runtime import build
from loop.settings import Settings
from loop.store import connect
from tests.conftest import keys_of
from tests.redis_server import spawn_redis


def _env(monkeypatch: pytest.MonkeyPatch, url: str, namespace: str, queue_url: str | None = None) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("LOOP_NAMESPACE", namespace)
    if queue_url:  # required when REDIS_URL is a cluster (the cluster suite runs this file too)
        monkeypatch.setenv("LOOP_QUEUE_URL", queue_url)
    else:
        monkeypatch.delenv("LOOP_QUEUE_URL", raising=False)


def test_a_namespace_exported_and_imported_elsewhere_serves_the_same_issues_claims_and_ttls(
        store, settings, monkeypatch, tmp_path) -> None:
    project = store.projects.create({"name": "P"})
    issues = [store.issues.create({"title": f"t{i}", "type": "task", "status": "todo", "projectId": project["id"]})
              for i in range(3)]
    store.r.set(store.keys.idempotency("abc"), "x", ex=600)
    path = tmp_path / "ns.jsonl"
    runner = CliRunner()
    _env(monkeypatch, settings.redis_url or "", settings.namespace, settings.queue_url)
    out = runner.invoke(main, ["admin", "export", str(path)])
    assert out.exit_code == 0, out.output
    target = spawn_redis()
    try:
        moved = f"m-{uuid.uuid4().hex[:8]}"
        _env(monkeypatch, target.url, moved)
        done = runner.invoke(main, ["admin", "import", str(path)])
        assert done.exit_code == 0, done.output
        copy = build(connect(target.url), Settings(namespace=moved), FrozenClock())
        assert {k.split(":", 1)[1] for k in keys_of(copy)} == {k.split(":", 1)[1] for k in keys_of(store)}
        assert [i["title"] for i in copy.issues.list({}, 10, 0)[0]] == [i["title"] for i in
                                                                        store.issues.list({}, 10, 0)[0]]
        assert 0 < copy.r.execute_command("PTTL", copy.keys.idempotency("abc")) <= 600_000
        claim = copy.dispatch.claim("agent-1")  # the dispatch indexes came along
        assert claim is not None and claim.issue["id"] in {i["id"] for i in issues}
        # A second import into the now non-empty namespace is refused and changes nothing.
        before = keys_of(copy)
        again = runner.invoke(main, ["admin", "import", str(path)])
        assert again.exit_code != 0 and "not empty" in again.output
        assert keys_of(copy) == before
    finally:
        target.stop()


def test_importing_something_that_is_not_an_export_is_refused_naming_the_problem(
        settings, monkeypatch, tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"hello": 1}\n')
    _env(monkeypatch, settings.redis_url or "", f"x-{uuid.uuid4().hex[:8]}", settings.queue_url)
    out = CliRunner().invoke(main, ["admin", "import", str(path)])
    assert out.exit_code != 0 and "not a Loop export" in out.output
