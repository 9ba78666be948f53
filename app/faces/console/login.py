"""Logging in and out of the console.

A failed login says only that the userid or the password is wrong, never which, and takes as
long either way (app/faces/console/accounts.py). The log gives the reason and the userid if it is an
operator's (any other text only as a hash), never the password. Past a budget of
app/faces/console/throttle.py (failures per userid and client, per client, per userid from unknown
clients) even the right password gets 429. A session lives in the database
(app/faces/console/session_store.py): logging out ends it everywhere.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from app.engine.logs import get_logger
from app.faces.console import accounts, session_store
from app.faces.console.auth import HOME, LOGIN_PATH, console_session, safe_next
from app.faces.console.render import render
from app.faces.console.sessions import LOGIN_COOKIE, SESSION_COOKIE, ConsoleCookies, cookies_for
from app.faces.console.throttle import LoginThrottle
from app.faces.web.fetch_metadata import from_another_site

log = get_logger("sopbot.console")

FAILED = "账号或密码错误。"
THROTTLED = "登录失败次数过多，请 15 分钟后再试。"
EXPIRED = "登录页已过期，请重新输入后登录。"

# Open to everyone: the login form and its POST.
public_router = APIRouter()
# Behind the login like every page: the console's home and the logout.
router = APIRouter()


@public_router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if await _logged_in(request):
        return RedirectResponse(safe_next(next), 303)
    return _form(request, safe_next(next))


@public_router.post("/login")
async def login(request: Request, userid: str = Form(""), password: str = Form(""),
                csrf_token: str = Form(""), next: str = Form(HOME)) -> Response:
    cookies = cookies_for(request.app.state.runtime.settings)
    userid, target = userid.strip()[:64], safe_next(next)
    if not _sent_by_our_form(request, cookies, csrf_token):
        log.warning("console_login_csrf_rejected", userid=_loggable(request, userid))
        return _form(request, target, userid, EXPIRED, 403)
    throttle, client = _throttle(request), request.client.host if request.client else None
    db = request.app.state.runtime.db
    attempt = await throttle.begin(db, userid, client)  # a failure until it succeeds
    if attempt.blocked is not None:
        log.warning("console_login_throttled", userid=_loggable(request, userid),
                    limit=attempt.blocked)
        return _form(request, target, userid, THROTTLED, 429)
    if not await _password_right(request, userid, password):
        return _form(request, target, userid, FAILED, 401)
    async with db.unit_of_work() as session:
        await throttle.succeeded(session, attempt, userid, client)
        token, _ = await session_store.open_session(session, userid, cookies.session_ttl_s)
    return _session_opened(cookies, userid, token, target)


def _session_opened(cookies: ConsoleCookies, userid: str, token: str, target: str) -> Response:
    response = RedirectResponse(target, 303)
    cookies.keep_session(response, token)
    cookies.drop_login_nonce(response)
    log.info("console_login", userid=userid)
    return response


async def _password_right(request: Request, userid: str, password: str) -> bool:
    """Whether `userid` is an operator with this password (a failure is logged with why)."""
    runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        stored = await accounts.stored_hash(session, userid)
    # Checked whatever the userid, so an outsider waits as long as an operator; after the
    # session closed, so logins queueing for a hashing slot hold no database connection.
    matches = await accounts.password_matches(password, stored)
    if userid not in runtime.settings.operators:
        reason = "not_an_operator"
    elif stored is None:
        reason = "no_password_set"
    elif not matches:
        reason = "wrong_password"
    else:
        return True
    log.warning("console_login_failed", userid=_loggable(request, userid), reason=reason)
    return False


@router.get("")
async def home() -> Response:
    return RedirectResponse("/console/funnel", 303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session: every copy of its cookie, on every replica (the CSRF check ran:
    another site cannot log you out)."""
    runtime = request.app.state.runtime
    async with runtime.db.unit_of_work() as session:
        await session_store.end_session(session, request.state.console)
    response = RedirectResponse(LOGIN_PATH, 303)
    cookies_for(runtime.settings).close_session(response)
    log.info("console_logout", userid=request.state.console.userid)
    return response


def _form(request: Request, target: str, userid: str = "", error: str | None = None,
          status_code: int = 200) -> Response:
    cookies = cookies_for(request.app.state.runtime.settings)
    nonce = cookies.login_nonce(request.cookies.get(LOGIN_COOKIE))
    response = render(request, "login.html", status_code=status_code, userid=userid,
                      error=error, next=target, csrf_token=cookies.login_form_token(nonce))
    cookies.keep_login_nonce(response, nonce)
    return response


async def _logged_in(request: Request) -> bool:
    if SESSION_COOKIE not in request.cookies:
        return False
    try:
        await console_session(request)
    except HTTPException:
        return False
    return True


def _sent_by_our_form(request: Request, cookies: ConsoleCookies, token: str) -> bool:
    """Whether the login form of this site sent the POST: its token matches the nonce cookie,
    and the browser does not say another site's page sent it. A login CSRF (the victim logged
    in as the attacker) can bring a token and cookie this server issued, which anyone can fetch
    and a sibling subdomain can plant, but not the browser's Sec-Fetch-Site (browsers too old
    to send one are left to the token)."""
    nonce_cookie = request.cookies.get(LOGIN_COOKIE)
    return not from_another_site(request) and cookies.login_form_ok(token, nonce_cookie)


def _loggable(request: Request, userid: str) -> str:
    """The userid as the log may show it: an operator's as typed; any other text as a keyed
    hash, since it may be a password typed into the wrong box. The same text gets the same tag,
    so repeated guesses still stand out; the key stops a log reader from testing guesses."""
    settings = request.app.state.runtime.settings
    if userid in settings.operators:
        return userid
    key = settings.secret_key.get_secret_value().encode()
    return "unknown:" + hmac.new(key, userid.encode(), "sha256").hexdigest()[:8]


def _throttle(request: Request) -> LoginThrottle:
    return request.app.state.console_throttle
