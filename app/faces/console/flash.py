"""A one-shot notice from a POST to the page it redirects to (POST-redirect-GET).

The POST leaves a small JSON payload in a signed, short-lived cookie; the next console page that
asks for it reads it once and clears it. Signed, so a link or another site cannot put words in
the console's mouth (a notice in the query string could be forged), and bound to the operator
who acted, so a shared browser does not show one operator's notice to the next, and tagged with
the page it was left for, since the cookie is shared by the console's pages: one page's payload
is not another's to word. Pages keep the payload to ids and codes and render the text from the
database, which keeps the cookie small.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.responses import Response

from app.faces.console.sessions import cookie_flags, secure_cookies

FLASH_COOKIE = "sopbot_console_flash"
FLASH_SALT = "sopbot.console.flash"
FLASH_TTL_S = 300  # long enough for a slow redirect, short enough to never resurface later


def _serializer(request: Request) -> URLSafeTimedSerializer:
    secret = request.app.state.runtime.settings.secret_key.get_secret_value()
    return URLSafeTimedSerializer(secret, salt=FLASH_SALT)


def put(request: Request, response: Response, userid: str, page: str,
        payload: dict[str, Any]) -> None:
    """Leave `payload` for `userid`'s next visit to `page`."""
    value = _serializer(request).dumps({"u": userid, "page": page, "p": payload})
    response.set_cookie(FLASH_COOKIE, value, max_age=FLASH_TTL_S, **_flags(request))


def take(request: Request, userid: str, page: str) -> dict[str, Any] | None:
    """The payload left for `userid` on `page`, if any; call `clear` on the page's response."""
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        data = _serializer(request).loads(value, max_age=FLASH_TTL_S)
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("u") != userid or data.get("page") != page:
        return None
    payload = data.get("p")
    return payload if isinstance(payload, dict) else None


def clear(request: Request, response: Response) -> None:
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, **_flags(request))


def _flags(request: Request) -> dict[str, Any]:
    return cookie_flags(secure_cookies(request.app.state.runtime.settings))
