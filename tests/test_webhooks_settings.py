"""Webhook settings read from the environment: secrets for rotation, retries, dedup and failed-job TTLs."""

from __future__ import annotations

import pytest

from loop.errors import ConfigError
from loop.settings import Settings

BASE = {"LOOP_API_KEY": "k"}


def test_webhook_defaults_keep_dedup_a_week_and_retry_five_times_with_backoff():
    s = Settings.from_env(BASE)
    assert s.webhook_dedup_seconds == 7 * 24 * 3600
    assert s.webhook_retry_intervals == (10, 30, 120, 600, 1800)
    assert s.failed_job_ttl == 30 * 24 * 3600
    assert s.github_webhook_secrets == s.sentry_client_secrets == s.posthog_webhook_secrets == ()


def test_several_comma_separated_secrets_are_kept_for_rotation():
    s = Settings.from_env({**BASE, "GITHUB_WEBHOOK_SECRET": " old , new ,", "POSTHOG_WEBHOOK_SECRET": "p"})
    assert s.github_webhook_secrets == ("old", "new") and s.posthog_webhook_secrets == ("p",)


def test_retry_intervals_dedup_and_failed_ttl_are_configurable():
    s = Settings.from_env({**BASE, "LOOP_WEBHOOK_RETRY_INTERVALS": "0,5,60", "LOOP_WEBHOOK_DEDUP_SECONDS": "1209600",
                           "LOOP_FAILED_JOB_TTL": "3600"})
    assert (s.webhook_retry_intervals, s.webhook_dedup_seconds, s.failed_job_ttl) == ((0, 5, 60), 1209600, 3600)


@pytest.mark.parametrize("name, value", [
    ("LOOP_WEBHOOK_RETRY_INTERVALS", "10,x"),
    ("LOOP_WEBHOOK_RETRY_INTERVALS", "-1"),
    ("LOOP_WEBHOOK_RETRY_INTERVALS", ",".join(["1"] * 26)),
    ("LOOP_WEBHOOK_DEDUP_SECONDS", "3600"),
    ("LOOP_FAILED_JOB_TTL", "0"),
])
def test_invalid_webhook_settings_stop_the_process_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, name: value})
    assert name in info.value.message
