"""Wiring the console into the app: the login, the pages behind it, and the static files.

Every router in PAGES is included under /console with the login and the CSRF check as
router-level dependencies, so a page added here cannot forget either (tests/console walks every
route to prove it). Static files are public: they hold no data.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.console import login
from app.console.auth import csrf_checked, operator_required
from app.console.pages import calendar, funnel, groups, keywords, members, outbox, reviews
from app.console.render import STATIC_PATH
from app.console.throttle import LoginThrottle

PREFIX = "/console"
STATIC_DIR = Path(__file__).parent / "static"

GUARDS = [Depends(operator_required), Depends(csrf_checked)]
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
)


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(login.public_router, prefix=PREFIX)
    for page in PAGES:
        router.include_router(page, prefix=PREFIX, dependencies=GUARDS)
    return router


def install(app: FastAPI) -> None:
    """Add the console to `app`: its routes, its static files, its login throttle."""
    app.include_router(build_router())
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="console-static")
    app.state.console_throttle = LoginThrottle()
