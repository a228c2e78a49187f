"""Settings.from_env: valid environments parse; each invalid variable is named in the error."""

from __future__ import annotations

import pytest

from loop.errors import ConfigError
from loop.settings import DEFAULT_MAX_BODY_BYTES, Settings

BASE = {"LOOP_API_KEY": "secret"}


def test_a_minimal_environment_gives_the_documented_defaults():
    s = Settings.from_env(BASE)
    assert s.api_key == "secret" and s.redis_url is None and s.port == 5667
    assert s.loop_url == "http://localhost:5667" and s.namespace == "loop"
    assert s.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    assert s.github_webhook_secrets == s.sentry_client_secrets == s.posthog_webhook_secrets == ()
    assert s.promote_signals_to_todo is True and s.lease_seconds == 900 and s.max_lease_expiries == 3
    assert s.prompt_token_placeholder == "$LOOP_API_KEY" and s.queue_name == "loop-signals"
    assert s.cors_origins == ("http://localhost:5668", "https://app.looped.me")


def test_every_foundation_variable_is_read():
    s = Settings.from_env({
        "LOOP_API_KEY": "k", "REDIS_URL": "redis://:pw@redis.internal:6380/2", "PORT": "8080",
        "LOOP_NAMESPACE": "team-a.prod_1", "LOOP_MAX_BODY_BYTES": "2048",
        "GITHUB_WEBHOOK_SECRET": "new, old ,", "SENTRY_CLIENT_SECRET": "s", "POSTHOG_WEBHOOK_SECRET": "p",
        "LOOP_SIGNALS_TO_TODO": "off", "LOOP_LEASE_SECONDS": "60", "LOOP_MAX_LEASE_EXPIRIES": "5",
        "LOOP_PROMPT_TOKEN": "$KEY", "LOOP_QUEUE": "q",
    })
    assert (s.redis_url, s.port, s.namespace, s.max_body_bytes) == \
        ("redis://:pw@redis.internal:6380/2", 8080, "team-a.prod_1", 2048)
    assert s.loop_url == "http://localhost:8080"  # follows PORT unless LOOP_URL is set
    assert s.github_webhook_secrets == ("new", "old") and s.sentry_client_secrets == ("s",)
    assert s.posthog_webhook_secrets == ("p",)
    assert (s.promote_signals_to_todo, s.lease_seconds, s.max_lease_expiries) == (False, 60, 5)
    assert (s.prompt_token_placeholder, s.queue_name) == ("$KEY", "q")


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://h:6380", "unix:///tmp/redis.sock"])
def test_redis_urls_of_every_supported_scheme_are_accepted(url):
    assert Settings.from_env({**BASE, "REDIS_URL": url}).redis_url == url


def test_an_explicit_loop_url_wins():
    assert Settings.from_env({**BASE, "LOOP_URL": "https://loop.example.com"}).loop_url == "https://loop.example.com"


@pytest.mark.parametrize(("env", "variable"), [
    ({}, "LOOP_API_KEY"),
    ({"LOOP_API_KEY": ""}, "LOOP_API_KEY"),
    ({"LOOP_API_KEY": "   "}, "LOOP_API_KEY"),
    ({**BASE, "PORT": "http"}, "PORT"),
    ({**BASE, "PORT": "0"}, "PORT"),
    ({**BASE, "PORT": "65536"}, "PORT"),
    ({**BASE, "REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
    ({**BASE, "REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ({**BASE, "REDIS_URL": "redis://"}, "REDIS_URL"),
    ({**BASE, "LOOP_URL": "ftp://x"}, "LOOP_URL"),
    ({**BASE, "LOOP_URL": "localhost:5667"}, "LOOP_URL"),
    ({**BASE, "LOOP_NAMESPACE": "has space"}, "LOOP_NAMESPACE"),
    ({**BASE, "LOOP_NAMESPACE": "{tag}"}, "LOOP_NAMESPACE"),
    ({**BASE, "LOOP_NAMESPACE": "a:b"}, "LOOP_NAMESPACE"),
    ({**BASE, "LOOP_NAMESPACE": "x" * 65}, "LOOP_NAMESPACE"),
    ({**BASE, "LOOP_MAX_BODY_BYTES": "10"}, "LOOP_MAX_BODY_BYTES"),
    ({**BASE, "LOOP_MAX_BODY_BYTES": "1MB"}, "LOOP_MAX_BODY_BYTES"),
    ({**BASE, "LOOP_SIGNALS_TO_TODO": "maybe"}, "LOOP_SIGNALS_TO_TODO"),
    ({**BASE, "LOOP_LEASE_SECONDS": "1"}, "LOOP_LEASE_SECONDS"),
    ({**BASE, "LOOP_MAX_LEASE_EXPIRIES": "0"}, "LOOP_MAX_LEASE_EXPIRIES"),
])
def test_an_invalid_variable_fails_with_a_message_naming_it(env, variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.message.startswith(variable + " ")


def test_the_gunicorn_entry_point_fails_at_start_naming_the_bad_variable(monkeypatch):
    from api import app as app_module

    monkeypatch.setenv("LOOP_API_KEY", "k")
    monkeypatch.setenv("PORT", "99999")
    monkeypatch.setattr(app_module, "_app", None)
    with pytest.raises(ConfigError, match="^PORT must be between 1 and 65535, got 99999$"):
        app_module.app_from_env()


def test_cors_origins_come_from_loop_cors_origins_and_none_allows_no_origin():
    s = Settings.from_env({**BASE, "LOOP_CORS_ORIGINS": "https://dash.example.com, http://localhost:3000"})
    assert s.cors_origins == ("https://dash.example.com", "http://localhost:3000")
    assert Settings.from_env({**BASE, "LOOP_CORS_ORIGINS": "none"}).cors_origins == ()
    assert Settings.from_env({**BASE, "LOOP_CORS_ORIGINS": ""}).cors_origins == Settings().cors_origins


@pytest.mark.parametrize("origin", ["https://dash.example.com/", "dash.example.com", "ftp://x", "*"])
def test_a_cors_origin_that_no_browser_would_send_is_refused_naming_the_variable(origin):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, "LOOP_CORS_ORIGINS": f"http://ok.example,{origin}"})
    assert info.value.message.startswith("LOOP_CORS_ORIGINS ") and repr(origin) in info.value.message


def test_the_api_reflects_an_origin_configured_in_loop_cors_origins(store, clock):
    import falcon.testing

    from api.app import create_app

    settings = Settings.from_env({**BASE, "LOOP_CORS_ORIGINS": "https://dash.example.com"})
    client = falcon.testing.TestClient(create_app(store, clock, settings))
    r = client.simulate_get("/", headers={"Origin": "https://dash.example.com"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    r = client.simulate_get("/", headers={"Origin": "https://app.looped.me"})
    assert "Access-Control-Allow-Origin" not in r.headers
