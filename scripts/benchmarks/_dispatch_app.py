"""gunicorn target for the dispatch benchmark: the normal app with prompt rendering detached.

Issue 4's HTTP target is measured "before prompt rendering is wired in"; the same server code
with ``store.prompts`` set to ``None`` is exactly that (dispatch then answers prompt/meta null).
Run as ``gunicorn --pythonpath scripts benchmarks._dispatch_app:app``.
"""

from __future__ import annotations

from api.app import create_app
from loop.clock import SystemClock
from loop.runtime import store_from_settings
from loop.settings import Settings

_settings = Settings.from_env()
_store = store_from_settings(_settings)
_store.dispatch.prompts = None  # claims without rendering
app = create_app(_store, SystemClock(), _settings)
