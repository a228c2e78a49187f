"""The per-process hint of which issue a fingerprint's group names never answers by itself:
every write re-checks the group, inside signal_append.lua or under WATCH (loop/store/signals.py,
``Signals.hints``)."""

from __future__ import annotations

import pytest

from loop.runtime import build
from loop.store import signals as signals_module
from loop.store.signals import fingerprint_digest, title_for

SIGNAL = {"source": "sentry", "type": "error", "severity": "low",
          "payload": {"message": "KeyError: 'user'"}, "fingerprint": "sentry:issue:7"}


def send(store, fingerprint: str = "sentry:issue:7"):
    data = {**SIGNAL, "fingerprint": fingerprint}
    issue = store.signals.issue_data("sentry", "low", data["payload"], title_for("sentry", "error", data["payload"]))
    return store.signals.create(data, issue)


@pytest.fixture
def other(redis_client, settings, clock, store):
    """A second API process on the same namespace (its own hints)."""
    return build(redis_client, settings, clock)


def test_a_process_whose_hint_names_a_closed_issue_joins_the_issue_another_process_opened_since(store, other):
    first = send(store).issue  # this process's hint: first
    other.issues.update(first["id"], {"status": "done"})
    reopened = send(other)  # the other process opens the recurrence: the group moves
    assert not reopened.grouped and reopened.issue["id"] != first["id"]
    assert store.signals.hints[store.keys.signal_group(fingerprint_digest("sentry:issue:7"))] == first["id"]
    joined = send(store)
    assert joined.grouped and joined.issue["id"] == reopened.issue["id"]
    assert joined.issue["signalCount"] == 2
    assert store.issues.get(first["id"])["signalCount"] == 1


def test_a_hint_naming_an_issue_closed_by_another_process_opens_a_recurrence_instead_of_joining_it(store, other):
    first = send(store).issue
    other.issues.update(first["id"], {"status": "canceled"})
    second = send(store)
    assert not second.grouped and second.issue["id"] != first["id"]
    assert store.issues.get(first["id"])["signalCount"] == 1
    assert "Recurrence" in second.issue["description"]


def test_a_hint_whose_group_is_gone_opens_a_new_issue(store):
    first = send(store).issue
    store.r.delete(store.keys.signal_group(fingerprint_digest("sentry:issue:7")))  # e.g. purged
    second = send(store)
    assert not second.grouped and second.issue["id"] != first["id"]
    assert send(store).issue["id"] == second.issue["id"]


def test_a_process_without_a_hint_joins_the_group_another_process_opened(store, other):
    first = send(other).issue
    joined = send(store)
    assert joined.grouped and joined.issue["id"] == first["id"] and joined.issue["signalCount"] == 2


def test_the_hints_are_bounded(store, monkeypatch):
    monkeypatch.setattr(signals_module, "GROUP_HINTS", 2)
    for i in range(5):
        send(store, f"fp:{i}")
    assert 1 <= len(store.signals.hints) <= 2
    assert send(store, "fp:0").issue["signalCount"] == 2  # a forgotten hint still groups
