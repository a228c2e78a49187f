"""What every dashboard resource shares: templates, the session gate, forms, security headers.

UI resources are public to the API's Bearer middleware (browsers hold no Bearer key); the one
:class:`Gate` middleware enforces the session cookie for every :class:`UiResource` the router
picks, and the CSRF token for every POST to one, so no page checks for itself.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import falcon
import jinja2

from api.http import raw_body, status_for
from api.ui.session import COOKIE, Session, Signer, same
from loop import errors
from loop.clock import iso

HERE = Path(__file__).parent
HTML = "text/html; charset=utf-8"
#: No inline script or style may run: app.js and app.css are the only code a page loads.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every template, whatever its name: user text always renders as text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["iso"] = lambda ms: iso(int(ms)) if ms not in (None, "") else ""


class UiResource:
    """A dashboard resource. ``public``: no session needed (login, static files); ``fragment``: a
    partial page fetched by app.js, answered 401 (not a redirect) without a session."""

    public = False
    fragment = False


def security_headers(resp: falcon.Response) -> None:
    resp.set_header("Content-Security-Policy", CSP)
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "same-origin")
    resp.set_header("Cache-Control", "no-store")


def render(req: falcon.Request, resp: falcon.Response, template: str, status: int = 200,
           **context: Any) -> None:
    session: Session | None = getattr(req.context, "ui", None)
    resp.status = status
    resp.content_type = HTML
    security_headers(resp)
    resp.text = ENV.get_template(template).render(session=session, path=req.path, **context)


def form(req: falcon.Request) -> dict[str, str]:
    """The urlencoded form of a POST (bounded like every body), last value of each field."""
    cached = getattr(req.context, "form", None)
    if cached is not None:
        return dict(cached)
    body = raw_body(req, getattr(req.context, "body_limit", 1 << 20)).decode("utf-8", "replace")
    fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
    req.context.form = fields
    return fields


def typed(fields: Mapping[str, str], ints: tuple[str, ...] = ()) -> dict[str, Any]:
    """Form strings as the API's JSON: blanks left out, digit strings of ``ints`` as numbers
    (anything else stays a string, so the API's schema names the problem)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        value = value.strip()
        if name in ("csrf", "back") or value == "":
            continue
        out[name] = int(value) if name in ints and value.lstrip("-").isdigit() else value
    return out


def fail(req: falcon.Request, resp: falcon.Response, exc: errors.LoopError) -> None:
    """The error page of a refused form: the API's status and message, with its field details."""
    render(req, resp, "error.html", status_for(exc), message=exc.message,
           details=getattr(exc, "details", None) or {}, back=req.referer or "/ui")


def redirect(location: str) -> falcon.HTTPSeeOther:
    return falcon.HTTPSeeOther(location)


class Gate:
    """Session and CSRF for every :class:`UiResource` (Falcon middleware, after ``Auth``)."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: Mapping[str, Any]) -> None:
        if not isinstance(resource, UiResource):
            return
        session = self.signer.read(req.cookies.get(COOKIE))
        req.context.ui = session
        if resource.public:
            return
        if session is None:
            if resource.fragment or req.method != "GET":
                raise errors.Unauthorized("Log in to the dashboard first")
            raise redirect("/ui/login?" + urllib.parse.urlencode({"next": req.relative_uri}))
        if req.method == "POST" and not same(form(req).get("csrf"), session.csrf):
            fail(req, resp, errors.Forbidden("Missing or wrong CSRF token: reload the page and submit again"))
            resp.complete = True

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        if isinstance(resource, UiResource):
            security_headers(resp)
