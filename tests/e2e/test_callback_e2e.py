"""End to end through a real uvicorn server: encrypted, signed callbacks in, inbox rows and
encrypted passive replies out, on SQLite and (with SOPBOT_TEST_PG_URL) PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from app.engine.inbox.models import InboxEvent
from app.engine.wecom.xmlutil import parse_xml
from tests.conftest import CORP_ID, OPERATOR, RunningApp
from tests.fakes import payloads


async def inbox_rows(app: RunningApp) -> list[InboxEvent]:
    async with app.runtime.db.sessions() as session:
        return list((await session.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars())


def reply_content(app: RunningApp, body: bytes) -> dict[str, object]:
    return parse_xml(app.crypto.decrypt_reply(body))


async def test_help_is_answered_as_encrypted_passive_reply_once(running: RunningApp) -> None:
    plaintext = payloads.text_message("/help", from_user=OPERATOR, corp_id=CORP_ID)
    first = await running.post_callback(plaintext)
    assert first.status_code == 200
    reply = reply_content(running, first.content)
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == OPERATOR
    assert reply["FromUserName"] == CORP_ID
    assert reply["Content"] == running.runtime.flows.commands.help

    # WeCom's retries re-encrypt the same payload with a fresh nonce and timestamp.
    for _ in range(2):
        again = await running.post_callback(plaintext)
        assert again.status_code == 200
        assert reply_content(running, again.content)["Content"] == reply["Content"]

    rows = await inbox_rows(running)
    assert len(rows) == 1
    assert rows[0].status == "done"
    assert rows[0].attempts == 1
    assert rows[0].handler == "handlers.commands.answer_help"
    assert rows[0].kind == "text"


async def test_commands_from_non_operators_are_refused(running: RunningApp) -> None:
    plaintext = payloads.text_message("/help", from_user="stranger", corp_id=CORP_ID)
    response = await running.post_callback(plaintext)
    reply = reply_content(running, response.content)
    assert reply["Content"] == running.runtime.flows.commands.not_operator
    assert (await inbox_rows(running))[0].handler == "handlers.commands.refuse_non_operator"


async def test_unknown_command_gets_a_clear_answer(running: RunningApp) -> None:
    plaintext = payloads.text_message("/frobnicate now", from_user=OPERATOR, corp_id=CORP_ID)
    reply = reply_content(running, (await running.post_callback(plaintext)).content)
    assert reply["Content"] == "未知命令：/frobnicate。发送 /help 查看可用命令。"


async def test_plain_text_that_no_handler_wants_is_stored_and_answered_empty(
        running: RunningApp) -> None:
    response = await running.post_callback(
        payloads.text_message("你好", from_user=OPERATOR, corp_id=CORP_ID))
    assert response.status_code == 200 and response.content == b""
    await running.idle()
    [row] = await inbox_rows(running)
    assert (row.status, row.handler, row.reply) == ("done", None, None)


async def test_customer_events_are_stored_once_and_handled_off_the_request(
        running: RunningApp) -> None:
    plaintext = payloads.external_contact(corp_id=CORP_ID, state="ch_douyin")
    responses = [await running.post_callback(plaintext) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.content == b"" for r in responses)
    await running.idle()
    [row] = await inbox_rows(running)
    assert row.kind == "external_contact.add"
    assert row.payload == plaintext
    assert row.status == "done" and row.attempts == 1


async def test_two_customers_added_in_the_same_second_are_two_events(
        running: RunningApp) -> None:
    now = int(time.time())
    for external_id in ("wmAAA", "wmBBB"):
        response = await running.post_callback(payloads.external_contact(
            corp_id=CORP_ID, external_user_id=external_id, create_time=now))
        assert response.status_code == 200
    rows = await inbox_rows(running)
    assert len(rows) == 2
    assert rows[0].dedupe_key != rows[1].dedupe_key
    assert {r.dedupe_key[:7] for r in rows} == {"sha256:"}


async def test_unknown_event_is_stored_logged_and_answered(running: RunningApp) -> None:
    plaintext = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName>"
                 "<![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType>"
                 "<![CDATA[event]]></MsgType><Event><![CDATA[brand_new_event]]></Event></xml>")
    response = await running.post_callback(plaintext)
    assert response.status_code == 200
    await running.idle()
    [row] = await inbox_rows(running)
    assert row.kind == "unknown"
    assert row.handler == "handlers.unknown.log_unknown_event"
    assert row.payload == plaintext


async def test_every_event_type_is_accepted(running: RunningApp) -> None:
    samples = [
        payloads.image_message(corp_id=CORP_ID), payloads.voice_message(corp_id=CORP_ID),
        payloads.video_message(corp_id=CORP_ID), payloads.location_message(corp_id=CORP_ID),
        payloads.link_message(corp_id=CORP_ID), payloads.enter_agent(corp_id=CORP_ID),
        payloads.external_chat(corp_id=CORP_ID), payloads.external_tag(corp_id=CORP_ID),
        payloads.kf_msg_or_event(corp_id=CORP_ID),
    ]
    for plaintext in samples:
        assert (await running.post_callback(plaintext)).status_code == 200
    await running.idle()
    rows = await inbox_rows(running)
    assert len(rows) == len(samples)
    assert "unknown" not in {row.kind for row in rows}
    assert all(row.status == "done" for row in rows)


async def test_count_is_exact_under_concurrent_duplicates(running: RunningApp) -> None:
    import asyncio

    plaintexts = [payloads.external_contact(corp_id=CORP_ID) for _ in range(10)]
    deliveries = [p for p in plaintexts for _ in range(3)]
    responses = await asyncio.gather(*(running.post_callback(p) for p in deliveries))
    assert all(r.status_code == 200 for r in responses)
    await running.idle()
    async with running.runtime.db.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(InboxEvent))
    assert count == 10


async def test_one_callback_id_follows_the_event_through_the_logs(
        running: RunningApp, capsys) -> None:
    import json

    capsys.readouterr()
    await running.post_callback(payloads.external_contact(corp_id=CORP_ID))
    await running.idle()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()
             if line.startswith("{")]
    stored = next(line for line in lines if line["event"] == "callback_stored")
    handled = next(line for line in lines if line["event"] == "event_handled")
    assert stored["callback_id"] == handled["callback_id"]
    assert len(stored["callback_id"]) == 16
    assert handled["kind"] == "external_contact.add"
