"""One log line per request (and per worker job), parsed as JSON: request id, route, status, key name;
never a secret or a body."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from loop.devserver import PROCFILE
from loop.errors import ConfigError
from loop.logs import JsonFormatter, TextFormatter, configure
from loop.settings import Settings
from tests.conftest import API_KEY

SECRET_BODY = "body-text-that-must-not-be-logged"


def lines(caplog: pytest.LogCaptureFixture, logger: str = "loop.api.access") -> list[dict[str, Any]]:
    fmt = JsonFormatter()
    return [json.loads(fmt.format(r)) for r in caplog.records if r.name == logger]


def test_each_request_logs_one_json_line_with_request_id_route_status_duration_and_key_name(client, caplog):
    caplog.set_level(logging.INFO)
    r = client.post("/api/issues", json={"title": SECRET_BODY, "type": "task"},
                    headers={"X-Request-ID": "req-42.a_b"})
    assert r.status_code == 201 and r.headers["X-Request-ID"] == "req-42.a_b"
    [line] = lines(caplog)
    assert line["requestId"] == "req-42.a_b" and line["method"] == "POST" and line["route"] == "/api/issues"
    assert line["status"] == 201 and line["key"] == "bootstrap" and line["durationMs"] >= 0
    assert line["level"] == "info" and line["logger"] == "loop.api.access"


def test_no_log_line_holds_the_authorization_header_or_the_body(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/api/issues", json={"title": SECRET_BODY, "type": "task"})
    client.post("/api/issues", json={"title": SECRET_BODY}, headers={"Authorization": "Bearer wrong-key-value"},
                auth=False)
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert text and API_KEY not in text and "wrong-key-value" not in text and SECRET_BODY not in text
    assert [line["status"] for line in lines(caplog)] == [201, 401]


@pytest.mark.parametrize("given", ["has space", "x" * 129, "semi;colon", ""])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_generated_one(client, caplog, given):
    caplog.set_level(logging.INFO)
    r = client.get("/api/issues", headers={"X-Request-ID": given} if given else {})
    rid = r.headers["X-Request-ID"]
    assert rid != given and len(rid) == 16
    assert lines(caplog)[0]["requestId"] == rid


def test_an_unrouted_request_is_logged_with_the_unmatched_route(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/nowhere", auth=False)
    assert lines(caplog)[0]["route"] == "<unmatched>" and lines(caplog)[0]["status"] == 404


def test_the_text_format_is_one_readable_line_with_the_fields(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/api/issues")
    record = next(r for r in caplog.records if r.name == "loop.api.access")
    text = TextFormatter().format(record)
    assert "\n" not in text and " INFO loop.api.access GET /api/issues 200 " in text and "key=bootstrap" in text


def test_loop_log_format_accepts_text_or_json_and_names_a_bad_value():
    assert Settings.from_env({"LOOP_API_KEY": "k"}).log_format == "text"
    assert Settings.from_env({"LOOP_API_KEY": "k", "LOOP_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="LOOP_LOG_FORMAT"):
        Settings.from_env({"LOOP_API_KEY": "k", "LOOP_LOG_FORMAT": "xml"})


def test_configure_json_writes_json_lines_to_stderr(capsys):
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure("json")
        logging.getLogger("loop.test").info("hello %s", "there", extra={"fields": {"a": 1}})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "hello there" and line["a"] == 1 and line["ts"].endswith("Z")


def test_a_worker_job_logs_one_line_with_its_outcome_and_no_payload(caplog):
    import redis

    from workers.signals import normalize_delivery

    caplog.set_level(logging.INFO)
    with pytest.raises(KeyError):
        normalize_delivery({"provider": "nope", "deliveryId": "d-9", "namespace": "n", "promote": True,
                            "body": SECRET_BODY}, client=redis.Redis())
    [line] = lines(caplog, "loop.worker.jobs")
    assert (line["job"], line["deliveryId"], line["outcome"], line["error"]) == (
        "normalize_delivery", "d-9", "error", "KeyError")
    assert SECRET_BODY not in json.dumps(line)


def test_gunicorn_writes_no_access_log_of_its_own_beside_the_request_log():
    assert "--access-logfile" not in PROCFILE
    assert "--access-logfile" not in (Path(__file__).parents[1] / "Procfile").read_text()
