"""Web sessions: a signed cookie opened with an account's bearer token, and CSRF tokens.

The cookie holds the account id, the start of its token's hash (so rotating the token or
deactivating the account ends every session), when it expires and the session's CSRF token,
signed with HMAC-SHA256. It is Secure, HttpOnly and SameSite=Strict. Nothing about a patient
is ever in it. Every form carries the session's CSRF token and every POST checks it; the
sign-in form, before there is a session, carries one bound to a short-lived sign-in cookie.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

__all__ = ["SESSION_COOKIE", "SIGNIN_COOKIE", "SessionData", "Signer", "session_secret"]

SESSION_COOKIE = "pa_session"
SIGNIN_COOKIE = "pa_signin"


def session_secret() -> bytes:
    """PRIORAUTH_SESSION_SECRET, or a random secret for this process (sessions then end when
    it restarts, and several worker processes each need the variable set alike)."""
    configured = os.environ.get("PRIORAUTH_SESSION_SECRET")
    if configured:
        return configured.encode()
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class SessionData:
    user_id: int
    fingerprint: str
    expires: dt.datetime
    csrf: str


class Signer:
    """Signs and checks cookie values (base64url JSON + '.' + HMAC-SHA256)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: bytes) -> str:
        digest = hmac.new(self._secret, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def dumps(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).rstrip(b"=")
        return f"{body.decode()}.{self._mac(body)}"

    def loads(self, value: str | None) -> dict[str, Any] | None:
        if not value or value.count(".") != 1 or len(value) > 2000:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def session(self, value: str | None, now: dt.datetime) -> SessionData | None:
        """The session a cookie holds, if it is genuine and has not expired."""
        data = self.loads(value)
        if data is None:
            return None
        try:
            found = SessionData(
                user_id=int(data["u"]),
                fingerprint=str(data["f"]),
                expires=dt.datetime.fromtimestamp(float(data["e"]), dt.UTC),
                csrf=str(data["c"]),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        return found if now < found.expires else None

    def new_session(self, user_id: int, fingerprint: str, expires: dt.datetime) -> tuple[str, str]:
        """(cookie value, its CSRF token)."""
        csrf = secrets.token_urlsafe(24)
        value = self.dumps({"u": user_id, "f": fingerprint, "e": expires.timestamp(), "c": csrf})
        return value, csrf

    def signin_token(self, value: str | None, now: dt.datetime) -> str | None:
        """The CSRF token a sign-in cookie holds, if genuine and fresh."""
        data = self.loads(value)
        if data is None or not isinstance(data.get("c"), str):
            return None
        try:
            fresh = now.timestamp() < float(data["e"])
        except (KeyError, TypeError, ValueError):
            return None
        return data["c"] if fresh else None


def same(expected: str | None, given: str | None) -> bool:
    """Whether a form's CSRF token is the session's (constant time)."""
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))
