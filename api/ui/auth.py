"""Login (an API key, once, for a signed session cookie), logout, ``/`` for browsers, static files."""

from __future__ import annotations

import secrets
from pathlib import Path

import falcon

from api.http import Api
from api.ui.base import HERE, UiResource, form, redirect, render
from api.ui.session import COOKIE, LOGIN_COOKIE, Signer, clear_cookie, same, set_cookie
from loop.tunables import UI_SESSION_SECONDS

STATIC = HERE / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _next(target: str | None) -> str:
    """Only a local dashboard path may follow a login (no open redirect)."""
    return target if target and target.startswith("/ui") and not target.startswith("/ui//") else "/ui"


class Login(UiResource):
    public = True

    def __init__(self, api: Api, signer: Signer) -> None:
        self.api = api
        self.signer = signer

    def _form(self, req: falcon.Request, resp: falcon.Response, error: str | None = None, status: int = 200) -> None:
        token = secrets.token_urlsafe(16)
        set_cookie(req, resp, LOGIN_COOKIE, token, 600)
        render(req, resp, "login.html", status, csrf=token, error=error, next=_next(req.get_param("next")))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._form(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = form(req)
        if not same(fields.get("csrf"), req.cookies.get(LOGIN_COOKIE)):
            self._form(req, resp, "The login form expired: try again.", 403)
            return
        name = self.api.store.apikeys.authenticate(fields.get("key", "").strip())
        if name is None:
            self._form(req, resp, "That API key is not valid.", 401)
            return
        cookie, _ = self.signer.issue(name)
        set_cookie(req, resp, COOKIE, cookie, UI_SESSION_SECONDS)
        clear_cookie(resp, LOGIN_COOKIE)
        resp.status = 303
        resp.location = _next(fields.get("next"))


class Logout(UiResource):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        clear_cookie(resp, COOKIE)
        resp.status = 303
        resp.location = "/ui/login"


class Home:
    """``GET /``: browsers (preferring HTML) go to the dashboard; API clients keep the JSON answer."""

    def __init__(self, root: object) -> None:
        self.root = root

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.client_prefers(["application/json", "text/html"]) == "text/html":
            raise redirect("/ui")
        self.root.on_get(req, resp)  # type: ignore[attr-defined]


class Static(UiResource):
    public = True

    def __init__(self) -> None:
        # Read once: the files are tiny and a fixed set (no path from the request reaches the disk).
        self.files = {p.name: p.read_bytes() for p in Path(STATIC).iterdir() if p.suffix in TYPES}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self.files:
            raise falcon.HTTPNotFound()
        resp.content_type = TYPES[Path(name).suffix]
        resp.data = self.files[name]
        resp.set_header("Cache-Control", "public, max-age=3600")
