"""Issue 18: every key of a namespace lives in one Redis Cluster slot by construction (the
``{namespace}`` hash tag opens every key), whatever the other parts of the key hold."""

from __future__ import annotations

import inspect

import pytest
from redis.cluster import key_slot

from loop.errors import ConfigError
from loop.keys import Keys
from loop.settings import Settings

#: Parts a caller might pass, braces included: the hash tag must still be the namespace.
HOSTILE = ("x", "{other}", "a}b{c", "", "{}")


def _key_methods() -> list[str]:
    """Every public method of Keys: a method added later (a scheduled set, a scratch key) is covered too."""
    return [name for name, fn in inspect.getmembers(Keys, inspect.isfunction) if not name.startswith("_")]


def _calls(keys: Keys, name: str) -> list[str]:
    method = getattr(keys, name)
    params = [p for p in inspect.signature(method).parameters.values()]
    out = []
    for part in HOSTILE:
        args = [part if "str" in str(p.annotation) else 1 for p in params if p.default is inspect.Parameter.empty]
        out.append(method(*args))
    return out


def test_the_key_methods_are_found_by_introspection() -> None:
    names = _key_methods()
    assert {"issue", "tmp", "dispatch_ready", "webhook_delivery", "session", "all_pattern"} <= set(names)
    assert len(names) > 50


@pytest.mark.parametrize("namespace", ["loop", "team-a", "a", "x" * 64, "n.s_1"])
@pytest.mark.parametrize("name", _key_methods())
def test_every_key_method_builds_keys_in_the_namespace_slot(namespace: str, name: str) -> None:
    keys = Keys(namespace)
    slot = key_slot(("{" + namespace + "}").encode())
    for key in _calls(keys, name):
        assert key.startswith("{" + namespace + "}:"), key
        assert key_slot(key.encode()) == slot, f"{name} -> {key!r} is in another slot"


@pytest.mark.parametrize("namespace", ["", "a{b", "a}b", "{a}", "a b", "x" * 65])
def test_a_namespace_that_would_break_the_hash_tag_is_refused(namespace: str) -> None:
    with pytest.raises(ConfigError, match="LOOP_NAMESPACE"):
        Settings.from_env({"LOOP_API_KEY": "k", "LOOP_NAMESPACE": namespace} if namespace else
                          {"LOOP_API_KEY": "k", "LOOP_NAMESPACE": " "})
    if namespace != "a b":  # a space is no hash-tag hazard: only the setting refuses it
        with pytest.raises(ValueError, match="namespace"):
            Keys(namespace)


def test_a_row_key_is_its_kind_prefix_followed_by_the_id() -> None:
    keys = Keys("team-a")
    assert keys.row_prefix("issue") + "abc" == keys.row("issue", "abc") == keys.issue("abc")
