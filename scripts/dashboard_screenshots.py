#!/usr/bin/env python3
"""Refresh the dashboard screenshots in docs/dashboard/ (docs/dashboard.md).

    .venv/bin/python scripts/dashboard_screenshots.py

Starts a live Loop (gunicorn + worker, tests/live_server.py) on the test Redis (``LOOP_TEST_REDIS_URL``,
``REDIS_URL`` or 127.0.0.1:6379, else a private redis-server) in a throwaway namespace, seeds a small
loop (a signal's chain, queued tasks, a claim, a comment), logs in with headless system Chromium
(tests/browser.py: nothing is downloaded) and saves one PNG per main page.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import start_browser  # noqa: E402
from tests.live_server import LiveServer, start_live_server  # noqa: E402
from tests.redis_server import choose_url, with_db  # noqa: E402

OUT = ROOT / "docs" / "dashboard"
PAGES = {"overview": "/ui", "queue": "/ui/queue", "issues": "/ui/issues", "operations": "/ui/ops"}


def call(live: LiveServer, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(live.url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {live.api_key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw)["data"] if raw else None


def seed(live: LiveServer) -> tuple[str, str]:
    """A small loop; the ids of the issue and the goal to screenshot."""
    for n in range(2):  # one group of two signals (same fingerprint)
        signal = call(live, "POST", "/api/signals", {"source": "sentry", "type": "error", "severity": "high",
                                                     "title": "TypeError in checkout", "fingerprint": "sentry:1",
                                                     "payload": {"error": "x is undefined", "n": n}})
    root = signal["issue"]["id"]
    call(live, "POST", "/api/issues", {"title": "Checkout fails on empty cart", "type": "hypothesis", "parentId": root})
    call(live, "POST", "/api/issues", {"title": "Guard the cart in the API", "type": "plan", "status": "done"})
    tasks = [call(live, "POST", "/api/issues", {"title": title, "type": "task", "status": "todo", "priority": i + 1})
             for i, title in enumerate(("Guard the empty cart", "Add a regression test", "Refresh the error copy"))]
    call(live, "POST", f"/api/issues/{tasks[2]['id']}/relations", {"type": "blocked_by", "relatedIssueId": tasks[1]["id"]})
    goal = call(live, "POST", "/api/goals", {"title": "Checkout error rate", "metric": "errors_per_1k",
                                             "targetValue": 1, "unit": "per 1k"})
    for day, value in enumerate((9, 7, 7.5, 5, 4, 3.2, 2.5), start=1):
        call(live, "POST", f"/api/goals/{goal['id']}/readings", {"value": value, "at": f"2026-11-0{day}T12:00:00Z"})
    claim = call(live, "GET", "/api/dispatch/next")
    issue_id: str = claim["issue"]["id"] if claim else root
    call(live, "POST", f"/api/issues/{issue_id}/comments",
         {"body": "On it: reproduced locally.", "authorName": "claude", "authorType": "agent"})
    return issue_id, goal["id"]


def main() -> int:
    base, proc = choose_url()
    live = start_live_server(with_db(base, 14))
    driver = start_browser(1366, 900)
    try:
        detail, goal = seed(live)
        driver.get(live.url + "/ui/login")
        driver.find_element("name", "key").send_keys(live.api_key)
        driver.find_element("css selector", "form button[type=submit]").click()
        OUT.mkdir(parents=True, exist_ok=True)
        for name, path in {**PAGES, "issue": f"/ui/issues/{detail}", "goal": f"/ui/goals/{goal}"}.items():
            driver.get(live.url + path)
            driver.save_screenshot(str(OUT / f"{name}.png"))
            print("wrote", (OUT / f"{name}.png").relative_to(ROOT))
    finally:
        driver.quit()
        live.stop()
        live.cleanup()
        if proc is not None:
            proc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
