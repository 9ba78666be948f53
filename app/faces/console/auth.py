"""FastAPI dependencies that guard the console: the login and the CSRF token.

`operator_required` answers with the logged-in userid. Without a valid session a browser's GET
of a page is sent to the login (303, back here afterwards); everything else (a POST, anything
under /console/api/) gets 401. `csrf_checked` makes an unsafe request (POST, ...) carry the
session's CSRF token, in the form field `csrf_token` or the `X-CSRF-Token` header, else 403
before the route runs, so nothing changes.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit

from fastapi import Depends, HTTPException, Request

from app.engine.logs import get_logger
from app.faces.console import session_store
from app.faces.console.sessions import SESSION_COOKIE, cookies_for
from app.operators.models import ConsoleSession

log = get_logger("sopbot.console")

HOME = "/console"
LOGIN_PATH = "/console/login"
API_PREFIX = "/console/api/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


async def console_session(request: Request) -> ConsoleSession:
    """The request's open session, also left on request.state.console for the templates."""
    runtime = request.app.state.runtime
    token = cookies_for(runtime.settings).token_of(request.cookies.get(SESSION_COOKIE))
    if token is None:
        raise _login_required(request)
    async with runtime.db.reader() as db_session:
        session = await session_store.session_for(db_session, token)
    # Out of SOPBOT_OPERATORS since it opened: refused here, and its row goes at the next start.
    if session is None or session.userid not in runtime.settings.operators:
        raise _login_required(request)
    request.state.console = session
    return session


LoggedIn = Annotated[ConsoleSession, Depends(console_session)]


async def operator_required(session: LoggedIn) -> str:
    """The logged-in operator's userid."""
    return session.userid


async def csrf_checked(request: Request, session: LoggedIn) -> str:
    """The operator's userid once an unsafe request proved it comes from a console page."""
    if request.method in SAFE_METHODS:
        return session.userid
    given = await _submitted_token(request)
    if not hmac.compare_digest(given.encode(), session.csrf.encode()):
        log.warning("console_csrf_rejected", userid=session.userid, path=request.url.path)
        raise HTTPException(403, "请求已失效（CSRF 校验未通过），请刷新页面后重试。")
    return session.userid


async def _submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return ""
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


def _login_required(request: Request) -> HTTPException:
    path = request.url.path
    if request.method in ("GET", "HEAD") and not path.startswith(API_PREFIX):
        wanted = path + (f"?{request.url.query}" if request.url.query else "")
        location = f"{LOGIN_PATH}?next={quote(wanted, safe='')}"
        return HTTPException(303, "login required", headers={"Location": location})
    return HTTPException(401, "请先登录控制台。")


def safe_next(value: str | None) -> str:
    """Where to go after the login: a console path of this site, else the console's home
    (never another site: a crafted ?next= must not turn the login into a redirector)."""
    if not value or not _plain(value):
        return HOME
    parts = urlsplit(value)
    path = _decoded(parts.path)
    if parts.scheme or parts.netloc or path is None or not _in_console(path):
        return HOME
    return value


def _in_console(path: str) -> bool:
    """Whether a decoded path is a console page a browser will not resolve out of /console
    ("/console/../verify", also written "%2e%2e"), the login page aside."""
    under = path == HOME or path.startswith(HOME + "/")
    dots = {".", ".."} & set(path.split("/"))
    return under and not dots and path != LOGIN_PATH and _plain(path)


def _plain(text: str) -> bool:
    # A backslash is a slash to browsers; a control character can split a header.
    return "\\" not in text and not any(ord(ch) < 32 for ch in text)


def _decoded(path: str) -> str | None:
    """`path` percent-decoded until nothing changes ("%252e" hides a dot as well as "%2e");
    None if it is still changing after a few rounds (nobody nests encodings honestly)."""
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    return None
