"""Wiring the console into the app: the login, the pages behind it, and the static files.

Every router in PAGES is included under /console with the login and the CSRF check as
router-level dependencies, so a page added here cannot forget either (tests/console walks every
route to prove it). Static files are public: they hold no data.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.engine.logs import get_logger
from app.faces.console import login, session_store
from app.faces.console.auth import csrf_checked, operator_required
from app.faces.console.banner import empty_pool_banner
from app.faces.console.pages import (
    calendar,
    content,
    funnel,
    groups,
    keywords,
    koc,
    members,
    outbox,
    reviews,
    rules,
)
from app.faces.console.render import STATIC_PATH
from app.faces.console.throttle import LoginThrottle
from app.faces.web.runtime import Runtime

log = get_logger("sopbot.console")

PREFIX = "/console"
STATIC_DIR = Path(__file__).parent / "static"

GUARDS = [Depends(operator_required), Depends(csrf_checked)]
PAGE_GUARDS = [*GUARDS, Depends(empty_pool_banner)]
# The pages, in no particular order (the menu's order is render.NAV). Add a page here.
PAGES = (
    login.router,
    funnel.router,
    groups.router,
    outbox.router,
    keywords.router,
    reviews.router,
    members.router,
    calendar.router,
    content.router,
    rules.router,
    koc.router,
)


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(login.public_router, prefix=PREFIX)
    for page in PAGES:
        router.include_router(page, prefix=PREFIX, dependencies=PAGE_GUARDS)
    router.include_router(reviews.files_router, prefix=PREFIX, dependencies=GUARDS)
    return router


async def on_start(runtime: Runtime) -> None:
    """Sessions of userids no longer in SOPBOT_OPERATORS end for good (a userid taken out and
    put back later must log in again)."""
    async with runtime.db.unit_of_work() as session:
        ended = await session_store.end_sessions_except(session, runtime.settings.operators)
    if ended:
        log.info("console_sessions_ended", reason="not_an_operator", sessions=ended)


def install(app: FastAPI) -> None:
    """Add the console to `app`: its routes, its static files, its login throttle."""
    app.include_router(build_router())
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="console-static")
    app.state.console_throttle = LoginThrottle()
