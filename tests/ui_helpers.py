"""Helpers for the dashboard's view tests (falcon.testing): log in, submit forms with the CSRF token."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from tests.conftest import API_KEY

FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
HTML = {"Accept": "text/html"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client: Any, key: str = API_KEY) -> Any:
    """POST the login form with ``key``; the response (303 with the session cookie on success)."""
    page = client.get("/ui/login", auth=False, headers=HTML)
    token = page.cookies["loop_login"].value
    body = urllib.parse.urlencode({"key": key, "csrf": csrf_of(page.text), "next": "/ui"})
    return client.post("/ui/login", auth=False, headers=FORM, body=body, cookies={"loop_login": token})


class Browser:
    """A logged-in session: GET pages and POST forms (with the page's CSRF token) by cookie only."""

    def __init__(self, client: Any, key: str = API_KEY) -> None:
        self.client = client
        result = login(client, key)
        assert result.status_code == 303, result.text
        self.cookie = result.cookies["loop_session"].value
        self.csrf = csrf_of(self.get("/ui").text)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, auth=False, headers=HTML, cookies={"loop_session": self.cookie}, **kw)

    def post(self, path: str, fields: dict[str, Any] | None = None, csrf: bool = True) -> Any:
        data = dict(fields or {})
        if csrf:
            data["csrf"] = self.csrf
        return self.client.post(path, auth=False, headers=FORM, body=urllib.parse.urlencode(data),
                                cookies={"loop_session": self.cookie})
