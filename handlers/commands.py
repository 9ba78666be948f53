"""Operator commands sent to the self-built app; quick answers ride on the passive reply."""

from __future__ import annotations

from app.bot.context import Ctx
from app.bot.filters import Command, FromOperator
from app.bot.router import Router
from app.wecom.events import TextMessage


async def refuse_non_operator(event: TextMessage, ctx: Ctx) -> None:
    """Only SOPBOT_OPERATORS may run commands; anyone else gets a polite refusal, logged."""
    ctx.log.warning("command_refused", user=event.from_user_name, command=ctx.data["command"])
    ctx.reply_text(event.from_user_name, ctx.flows.commands.not_operator)


async def answer_help(event: TextMessage, ctx: Ctx) -> None:
    """/help lists the commands an operator can run."""
    ctx.reply_text(event.from_user_name, ctx.flows.commands.help)


async def answer_unknown_command(event: TextMessage, ctx: Ctx) -> None:
    """An unknown /command gets a clear answer pointing to /help."""
    ctx.log.info("command_unknown", command=ctx.data["command"])
    text = ctx.flows.commands.unknown_command.format(command=ctx.data["command"])
    ctx.reply_text(event.from_user_name, text)


def router() -> Router:
    commands = Router("commands")
    commands.add(TextMessage, refuse_non_operator, Command(), ~FromOperator())
    commands.add(TextMessage, answer_help, Command("help"))
    commands.add(TextMessage, answer_unknown_command, Command())
    return commands
