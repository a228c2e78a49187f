"""One log format for the API, the worker and ``loop dev``: readable text, or JSON lines.

``LOOP_LOG_FORMAT=json`` (``Settings.log_format``) makes every record one JSON object per line
for a log shipper; the default is ``time level logger message key=value...``. Structured fields
travel in ``extra={"fields": {...}}`` so both formats carry them. Callers never put secrets or
request/response bodies in fields (the request log names the key, never its value).
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from typing import Any

import orjson

LOG_FORMATS = ("text", "json")
#: A client's ``X-Request-ID`` is echoed only when it is a sane token; anything else is replaced.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def request_id(given: str | None) -> str:
    """``given`` when it is a sane token (<= 128 of ``[A-Za-z0-9._-]``), else a fresh random id."""
    if given and REQUEST_ID_RE.match(given):
        return given
    return secrets.token_hex(8)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", **fields}`` (plus ``exc`` with a traceback) per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                                "level": record.levelname.lower(), "logger": record.name,
                                "msg": record.getMessage(), **_fields(record)}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00.000Z INFO loop.api message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        head = (f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}Z "
                f"{record.levelname} {record.name} {record.getMessage()}")
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{head} {extra}" if extra else head
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def formatter(fmt: str) -> logging.Formatter:
    made: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    made.converter = time.gmtime  # the "Z" suffix means UTC
    return made


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    """Send every log record to stderr in ``fmt``, replacing the root logger's handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
