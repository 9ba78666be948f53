"""The single ordered list of behaviours. Earlier routers win: put specific ones first.

Order (DESIGN.md §5): operator commands, active dialogs, welcomes, routing, keyword replies last.
"""

from __future__ import annotations

from app.bot.router import Router
from handlers import commands, unknown, welcome


def build_router() -> Router:
    root = Router("root")
    root.include(
        commands.router(),
        welcome.router(),
        unknown.router(),
    )
    return root
