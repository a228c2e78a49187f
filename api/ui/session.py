"""Dashboard sessions: a signed cookie naming the key that logged in, and its CSRF token.

The cookie holds ``{key name, session id, expiry}`` and an HMAC of it under a secret derived from
``LOOP_API_KEY`` (changing the key logs every browser out). The API key itself never leaves the
login request: not in the cookie, not in a page. A named key that is revoked ends its sessions
(one HEXISTS per request). The CSRF token is an HMAC of the session id, so it needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import falcon
import orjson

from loop.store.apikeys import BOOTSTRAP_NAME
from loop.tunables import UI_SESSION_SECONDS

if TYPE_CHECKING:
    from loop.store.base import RedisStore

COOKIE = "loop_session"
#: Before login there is no session: the login form's CSRF token is a random cookie it must echo.
LOGIN_COOKIE = "loop_login"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    key_name: str
    sid: str
    expires_ms: int
    csrf: str

    @property
    def bootstrap(self) -> bool:
        return self.key_name == BOOTSTRAP_NAME


class Signer:
    """Issues and checks session cookies for one store (its settings give the secret)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.secret = hmac.new(store.settings.api_key.encode(), b"loop-ui-session-v1", hashlib.sha256).digest()

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self.secret, text.encode(), hashlib.sha256).digest())

    def csrf_for(self, sid: str) -> str:
        return self._mac("csrf:" + sid)

    def issue(self, key_name: str) -> tuple[str, Session]:
        """A new session for ``key_name``: (cookie value, session)."""
        sid = secrets.token_urlsafe(16)
        expires = self.store.now() + UI_SESSION_SECONDS * 1000
        payload = _b64(orjson.dumps({"n": key_name, "s": sid, "e": expires}))
        return f"{payload}.{self._mac(payload)}", Session(key_name, sid, expires, self.csrf_for(sid))

    def read(self, cookie: str | None) -> Session | None:
        """The session of a cookie when its signature holds, it has not expired and its key lives."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            name, sid, expires = str(data["n"]), str(data["s"]), int(data["e"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        if expires <= self.store.now():
            return None
        if name != BOOTSTRAP_NAME and not self.store.r.hexists(self.store.keys.apikey_names(), name):
            return None  # the named key was revoked
        return Session(name, sid, expires, self.csrf_for(sid))


def set_cookie(req: falcon.Request, resp: falcon.Response, name: str, value: str, max_age: int | None) -> None:
    resp.set_cookie(name, value, max_age=max_age, path="/", http_only=True, same_site="Strict",
                    secure=req.scheme == "https")


def clear_cookie(resp: falcon.Response, name: str) -> None:
    resp.unset_cookie(name, path="/", same_site="Strict")


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
