"""The single ordered list of behaviours. Earlier routers win: put specific ones first.

Order (DESIGN.md §5): operator commands, active dialogs, welcomes, routing, keyword replies last.
Each behaviour's router also carries what runs on its behalf outside the worker (intake, settle
hooks, kf page steps, scheduled jobs: app/engine/bot/router.py), so this list is all the wiring.
"""

from __future__ import annotations

from app.engine.bot.router import Router
from handlers import (
    calendar,
    commands,
    group_stats,
    group_talk,
    keywords,
    kf,
    koc,
    membership,
    unknown,
    verify_dialog,
    welcome,
)


def build_router() -> Router:
    root = Router("root")
    root.include(
        commands.router(),
        verify_dialog.router(),
        welcome.router(),
        kf.router(),
        membership.router(),
        calendar.router(),
        group_talk.router(),
        group_stats.router(),
        koc.router(),
        keywords.router(),
        unknown.router(),
    )
    return root


class IncompleteRouter(ValueError):
    """A router given to the service lacks a behaviour's intake (a welcome would be lost)."""


def check_router(router: Router) -> None:
    """A router given instead of build_router() (tests) must carry every intake the real one
    declares, unless it says it is partial: a missing intake would drop welcomes silently."""
    missing = [] if router.partial else router.missing_intake(build_router())
    if missing:
        raise IncompleteRouter(f"router {router.name!r} lacks the intake of {', '.join(missing)}"
                               f": include those behaviours' routers, or build it partial=True")
