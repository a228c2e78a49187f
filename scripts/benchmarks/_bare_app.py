"""gunicorn target for ``--scenario httpfloor``: a WSGI app that answers every request at once.

The same status, headers and body size as Loop's ``GET /health``, with no framework, no
middleware and no Redis: what is left is gunicorn's own cost per request.
Run as ``gunicorn --pythonpath scripts benchmarks._bare_app:app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"ok":true,"service":"loop-api","timestamp":"2026-12-03T00:00:00.000Z"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
