"""Through the simulator: an operator's command and a stranger's, answered on the encrypted
passive reply; and group membership kept across a join the service never received (the
next event's LastMemVer shows it missed one, and groupchat/get repairs it)."""

from __future__ import annotations

from sqlalchemy import select

from app.groups.models import CustomerGroup, GroupMember
from tests.conftest import make_settings, serve_app, wait_until
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, running_sim


async def test_commands_and_a_missed_membership_event(db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_MEMBERS="zhangsan,lisi,operator1") as sim:
        settings = make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                                 callback_aes_key=AES_KEY, agent_secret=SECRET,
                                 api_base=sim.base_url, operators=frozenset({"operator1"}))
        async with serve_app(settings, simulator=True) as app:
            bot_url = f"{app.base_url}/wecom/callback"
            sim.sim.callbacks.bot_url = bot_url
            answered = await sim.scenario("app_text", from_user="operator1", content="/review")
            assert "目前没有待审核的认证" in answered["callbacks"][0]["reply"]
            refused = await sim.scenario("app_text", from_user="zhangsan", content="/stats")
            assert "您还没有运营权限" in refused["callbacks"][0]["reply"]

            made = await sim.scenario("group_create", owner="zhangsan", name="网店卖家交流群1")
            chat_id = made["chat_id"]
            await sim.scenario("group_join", chat_id=chat_id, external_userid="wmOne")

            async def one() -> bool:
                async with app.runtime.db.reader() as session:
                    rows = await session.scalars(select(GroupMember.userid).where(
                        GroupMember.chat_id == chat_id, GroupMember.left_at.is_(None)))
                    return "wmOne" in set(rows)
            await wait_until(one, 10)
            # wmTwo's join never reaches the service (its URL is down for that callback).
            sim.sim.callbacks.bot_url = "http://127.0.0.1:9/wecom/callback"
            await sim.scenario("group_join", chat_id=chat_id, external_userid="wmTwo")
            sim.sim.callbacks.bot_url = bot_url
            await sim.scenario("group_join", chat_id=chat_id, external_userid="wmThree")

            async def repaired() -> bool:
                async with app.runtime.db.reader() as session:
                    group = await session.scalar(select(CustomerGroup).where(
                        CustomerGroup.chat_id == chat_id))
                    rows = set(await session.scalars(select(GroupMember.userid).where(
                        GroupMember.chat_id == chat_id, GroupMember.left_at.is_(None))))
                return group is not None and {"wmOne", "wmTwo", "wmThree"} <= rows \
                    and group.member_count == 4
            await wait_until(repaired, 10)
            await app.idle()
