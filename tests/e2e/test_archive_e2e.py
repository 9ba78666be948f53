"""The chat archive end to end: the simulator's group messages announced by a real encrypted
msgaudit_notify wake the service's reader, which pulls the pages from the simulator with the
archive secret's token, opens the records in its child process and fills the rollups; a
poisoned record is quarantined and reading goes on; a recall leaves the counts."""

from __future__ import annotations

from typing import Any

from app.archive.models import (
    ArchivedMessage,
    ArchiveQuarantine,
    ArchiveReader,
    GroupActivityDay,
    GroupQuestion,
    Speaker,
)
from tests.conftest import make_settings, rows_of, serve_app, wait_until
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, running_sim

ARCHIVE_SECRET = "sim-e2e-archive-secret"


def settings_for(db_url: str, base_url: str) -> Any:
    return make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                         callback_aes_key=AES_KEY, agent_secret=SECRET, api_base=base_url,
                         archive_secret=ARCHIVE_SECRET, archive_source="simulator",
                         archive_sweep_s=30)  # only the notify wakes it within the test


async def test_group_talk_reaches_the_rollups_through_the_archive(db_url: str) -> None:
    async with running_sim(WECOM_ARCHIVE_SECRET=ARCHIVE_SECRET) as sim, \
            serve_app(settings_for(db_url, sim.base_url), simulator=True) as app:
        sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
        db = app.runtime.db
        chat_id = (await sim.scenario("group_create", owner="zhangsan",
                                      name="便利店店主交流群1"))["chat_id"]
        for customer in ("wmOne", "wmTwo"):
            await sim.scenario("group_join", chat_id=chat_id, external_userid=customer)
        posted = await sim.scenario("group_messages", messages=[
            {"chat_id": chat_id, "sender": "wmOne", "text": "大家好，我是开便利店的老王"},
            {"chat_id": chat_id, "sender": "wmTwo", "text": "这款饮料有没有整箱价？"},
            {"chat_id": chat_id, "sender": "zhangsan", "text": "有的，群公告里有价格表"}])
        assert [c["outcome"] for c in posted["callbacks"]] == ["delivered"]
        await sim.scenario("archive_poison")
        later = await sim.scenario("group_message", chat_id=chat_id, sender="wmOne",
                                   text="加我微信 laowang888")
        await sim.scenario("group_recall", msgid=later["msgid"])

        async def read_all() -> bool:
            readers = await rows_of(db, ArchiveReader)
            return bool(readers) and readers[0].seq == 6 and readers[0].lease_owner is None
        await wait_until(read_all, 15)

        stored = {m.msgid: m for m in await rows_of(db, ArchivedMessage)}
        assert len(stored) == 5  # three posts, the recalled one, the recall
        assert stored[later["msgid"]].recalled and stored[later["msgid"]].text is None
        [quarantined] = await rows_of(db, ArchiveQuarantine)
        assert quarantined.seq == 4
        [day] = await rows_of(db, GroupActivityDay)
        assert (day.messages, day.customer_messages, day.staff_messages, day.speakers) == (
            3, 2, 1, 2)
        [question] = await rows_of(db, GroupQuestion)
        assert question.asker == "wmTwo" and question.answered_by == "zhangsan"
        intro = {s.userid: s.intro_msgid for s in await rows_of(db, Speaker)}
        assert intro["wmOne"] == posted["msgids"][0]  # a newcomer's self-introduction
        health = await app.client.get("/healthz")
        assert health.status_code == 200
        metrics = (await app.client.get("/metrics")).text
        assert "sopbot_archive_quarantined 1.0" in metrics
