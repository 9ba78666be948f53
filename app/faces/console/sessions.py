"""The console's signed cookies: the session's token, and the login form's CSRF nonce.

The session cookie carries the token of a session kept in the database (session_store.py),
signed and time-stamped by itsdangerous under SOPBOT_SECRET_KEY with a salt of its own (a
verification link can never pass for a session): a forged or altered cookie is refused before
the database is asked, an old one by the age check. The login nonce is signed too, with a salt
of its own: only a nonce this server issued counts, never one another site planted.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.responses import Response

if TYPE_CHECKING:
    from app.engine.config import Settings

SESSION_COOKIE = "sopbot_console"
LOGIN_COOKIE = "sopbot_console_login"
SESSION_SALT = "sopbot.console.session"
LOGIN_SALT = "sopbot.console.login"
NONCE_SALT = "sopbot.console.login-nonce"
# The cookies go only to the console, never to /verify or /wecom.
COOKIE_PATH = "/console"
# A login form older than this asks for a reload instead of logging in.
LOGIN_FORM_TTL_S = 3600


class ConsoleCookies:
    """Issues and reads the console's cookies for one secret key."""

    def __init__(self, secret_key: str, session_ttl_s: float, secure: bool) -> None:
        self._sessions = URLSafeTimedSerializer(secret_key, salt=SESSION_SALT)
        self._logins = URLSafeTimedSerializer(secret_key, salt=LOGIN_SALT)
        self._nonces = URLSafeTimedSerializer(secret_key, salt=NONCE_SALT)
        self.session_ttl_s, self.secure = session_ttl_s, secure

    def keep_session(self, response: Response, token: str) -> None:
        """Set the cookie of the session whose token is `token`."""
        self._set(response, SESSION_COOKIE, self._sessions.dumps({"t": token}),
                  int(self.session_ttl_s))

    def token_of(self, value: str | None) -> str | None:
        """The session token a cookie value carries; None if absent, forged, altered or old."""
        data = self._load(self._sessions, value, self.session_ttl_s)
        token = data.get("t") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None

    def close_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, **cookie_flags(self.secure))

    def login_nonce(self, cookie: str | None) -> str:
        """The nonce in the browser's login cookie if this server signed it within
        LOGIN_FORM_TTL_S, else a new one: a value planted by another site (a sibling
        subdomain, a plain-http page) never becomes the nonce a form token is signed for."""
        nonce = self._load(self._nonces, cookie, LOGIN_FORM_TTL_S)
        return nonce if isinstance(nonce, str) and nonce else secrets.token_urlsafe(24)

    def login_form_token(self, nonce: str) -> str:
        """The login form's CSRF token, bound to the nonce cookie: a form posted from another
        site has neither the cookie nor a token signed for it."""
        return self._logins.dumps(nonce)

    def keep_login_nonce(self, response: Response, nonce: str) -> None:
        self._set(response, LOGIN_COOKIE, self._nonces.dumps(nonce), LOGIN_FORM_TTL_S)

    def login_form_ok(self, token: str, cookie: str | None) -> bool:
        """Whether the form's token was signed for the nonce the login cookie carries."""
        signed = self._load(self._logins, token, LOGIN_FORM_TTL_S)
        nonce = self._load(self._nonces, cookie, LOGIN_FORM_TTL_S)
        if not isinstance(signed, str) or not isinstance(nonce, str) or not nonce:
            return False
        return hmac.compare_digest(signed.encode(), nonce.encode())

    def drop_login_nonce(self, response: Response) -> None:
        response.delete_cookie(LOGIN_COOKIE, **cookie_flags(self.secure))

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, **cookie_flags(self.secure))

    @staticmethod
    def _load(serializer: URLSafeTimedSerializer, value: str | None, max_age: float) -> object:
        if not value:
            return None
        try:
            # The age is checked in whole seconds, so max_age's whole part decides alike.
            return serializer.loads(value, max_age=int(max_age))
        except BadData:  # a bad signature, an expired stamp, an unreadable payload
            return None


def cookies_for(settings: Settings) -> ConsoleCookies:
    return ConsoleCookies(settings.secret_key.get_secret_value(),
                          settings.console_session_h * 3600, secure=secure_cookies(settings))


def cookie_flags(secure: bool) -> dict[str, Any]:
    """The flags of every console cookie (sessions.py's and flash.py's), for setting it and
    for deleting it (a browser deletes only the cookie with the same path): sent only to the
    console, out of scripts' reach, not on other sites' POSTs, Secure as `secure` says."""
    return {"path": COOKIE_PATH, "secure": secure, "httponly": True, "samesite": "lax"}


def secure_cookies(settings: Settings) -> bool:
    # Secure cookies need HTTPS; a plain-http deployment (a laptop, the demo) would never get
    # them back, so the flag follows the public URL.
    return settings.public_url.startswith("https://")
