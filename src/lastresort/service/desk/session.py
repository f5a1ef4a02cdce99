"""The desk's session: a signed cookie bound to one credential, and CSRF tokens.

The cookie holds the credential's token id, a random session nonce and an expiry,
signed with HMAC-SHA256 under the desk's secret; never the token itself. Every
request looks the credential up again, so a revoked token ends its sessions at once.
The CSRF token of a session is an HMAC of its nonce: a form posted from another
site cannot know it (and the cookie is ``SameSite=Strict`` besides).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable

from attrs import frozen

__all__ = ["COOKIE", "PRE_COOKIE", "SECRET_ENV", "Session", "Signer", "secret_from_env"]

#: the environment variable that holds the desk's secret, shared by every process
#: behind one address (at least 32 characters)
SECRET_ENV = "LASTRESORT_DESK_SECRET"

#: the session cookie's name
COOKIE = "lr_desk"
#: a random value set before sign-in, so the sign-in form has a CSRF token too
PRE_COOKIE = "lr_desk_pre"
#: how long a session lasts without signing in again (a working shift)
LIFETIME = 12 * 3600


@frozen
class Session:
    """A signed-in person: the credential's token id and the session's nonce."""

    token_id: str
    nonce: str
    expires: int


def secret_from_env() -> bytes | None:
    """The secret in ``LASTRESORT_DESK_SECRET``, or ``None`` when it is not set.

    :raises ValueError: when it is set but shorter than 32 bytes (never quoted)."""
    value = os.environ.get(SECRET_ENV)
    if not value:
        return None
    secret = value.encode("utf-8")
    if len(secret) < 32:
        raise ValueError(f"{SECRET_ENV} must be at least 32 bytes")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks session cookies and CSRF tokens.

    :param secret: at least 32 bytes; ``None`` makes a random one (sessions then
        end when the process does, which is what a single desk process wants).
    :param now: the wall clock in seconds (tests move it).
    """

    def __init__(self, secret: bytes | None = None, now: Callable[[], float] = time.time) -> None:
        if secret is not None and (not isinstance(secret, bytes) or len(secret) < 32):
            raise ValueError("the desk's secret must be at least 32 bytes")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._now = now

    def _mac(self, purpose: str, payload: str) -> str:
        key = hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()
        return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())

    def new_session(self, token_id: str) -> tuple[Session, str]:
        """A new session for ``token_id`` and its cookie value."""
        session = Session(token_id, secrets.token_urlsafe(16), int(self._now()) + LIFETIME)
        payload = _b64(
            json.dumps([session.token_id, session.nonce, session.expires]).encode("utf-8")
        )
        return session, f"{payload}.{self._mac('session', payload)}"

    def session(self, cookie: str | None) -> Session | None:
        """The session of a cookie value; ``None`` when it is missing, forged, or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            token_id, nonce, expires = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        if not (isinstance(token_id, str) and isinstance(nonce, str) and isinstance(expires, int)):
            return None
        if expires <= self._now():
            return None
        return Session(token_id, nonce, expires)

    def csrf(self, nonce: str) -> str:
        """The CSRF token of a session (or of a pre-sign-in) nonce."""
        return self._mac("csrf", nonce)

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``nonce``."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.csrf(nonce))
