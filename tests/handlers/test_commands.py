"""Operator command handlers, run by the real worker and router on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from app.main import build_services
from app.services import Services
from app.wecom.events import event_from_xml
from app.wecom.xmlutil import parse_xml
from tests.conftest import CORP_ID, OPERATOR
from tests.fakes import payloads


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    yield built
    await built.db.dispose()


async def handle_text(services: Services, content: str, sender: str = OPERATOR) -> dict:
    plaintext = payloads.text_message(content, from_user=sender, corp_id=CORP_ID)
    accepted = await services.writer.accept(event_from_xml(plaintext), plaintext, "cb-test")
    processed = await services.worker.process_one(accepted.inbox_id)
    assert processed is not None and processed.status == "done"
    return {"handler": processed.handler, **parse_xml(processed.reply or "<xml/>")}


async def test_help_lists_commands_for_operators(services: Services) -> None:
    reply = await handle_text(services, "/help")
    assert reply["handler"] == "handlers.commands.answer_help"
    assert reply["Content"] == services.flows.commands.help
    assert reply["ToUserName"] == OPERATOR and reply["FromUserName"] == CORP_ID


async def test_full_width_slash_and_case_are_accepted(services: Services) -> None:
    reply = await handle_text(services, "／HELP")
    assert reply["handler"] == "handlers.commands.answer_help"


async def test_non_operator_is_refused_for_every_command(services: Services) -> None:
    for command in ("/help", "/stats 7d", "/nonsense"):
        reply = await handle_text(services, command, sender="intruder")
        assert reply["handler"] == "handlers.commands.refuse_non_operator"
        assert reply["Content"] == services.flows.commands.not_operator


async def test_unknown_command_names_the_command(services: Services) -> None:
    reply = await handle_text(services, "/launch rockets")
    assert reply["handler"] == "handlers.commands.answer_unknown_command"
    assert reply["Content"] == "未知命令：/launch。发送 /help 查看可用命令。"


async def test_plain_text_is_not_a_command(services: Services) -> None:
    reply = await handle_text(services, "help")
    assert reply == {"handler": None}
