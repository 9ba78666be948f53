"""The single ordered list of behaviours. Earlier routers win: put specific ones first.

Order (DESIGN.md §5): operator commands, active dialogs, welcomes, routing, keyword replies last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.bot.router import Router
from handlers import commands, keywords, kf, membership, unknown, verify_dialog, welcome

if TYPE_CHECKING:
    from app.config import Settings
    from app.flows import Flows
    from app.inbox.writer import ImmediateRule
    from app.kf.puller import KfRule


def build_router() -> Router:
    root = Router("root")
    root.include(
        commands.router(),
        verify_dialog.router(),
        welcome.router(),
        kf.router(),
        membership.router(),
        keywords.router(),
        unknown.router(),
    )
    return root


def build_immediate_rules(flows: Flows, settings: Settings) -> list[ImmediateRule]:
    """Messages stored with the callback itself, ahead of the inbox worker (app/inbox/writer.py)."""
    return [welcome.welcome_rule(flows, settings)]


def build_kf_rules(flows: Flows) -> list[KfRule]:
    """Messages the kf reader stores with the page that brought their event."""
    return [kf.welcome_rule(flows)]
