"""Mass tasks against the simulator: the calendar's task is created with WeCom's msgid, one
owner confirms it, the other is reminded and then counted as missed; the report shows the
confirmation rate per owner."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from app.calendar.flows import Greeting, SegmentCalendar
from app.calendar.models import CalendarPost
from app.calendar.posting import post_due
from app.calendar.tracking import report, track
from app.engine.config import SHANGHAI
from app.faces.cli.main import cli
from app.flows import load_flows
from app.groups.models import CustomerGroup
from tests.conftest import REPO, make_settings, serve_app, wait_until
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, running_sim
from tests.funnel.test_codes import env_file

CALENDAR = load_flows(REPO / "sop_flows").calendar.model_copy(update={
    "internal": {}, "segments": {"online": SegmentCalendar(
        morning=Greeting(time="08:00", text="早上好，今日上新已更新！"))}})


async def test_a_task_is_confirmed_or_reminded_then_missed(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with running_sim(SOPBOT_SIM_MEMBERS="zhangsan,lisi") as sim:
        settings = make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                                 callback_aes_key=AES_KEY, agent_secret=SECRET,
                                 api_base=sim.base_url, outbox_retry_base_s=0.05)
        async with serve_app(settings, simulator=True) as app:
            sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
            db = app.runtime.db
            for owner in ("zhangsan", "lisi"):  # named as the segment's room_name says
                await sim.scenario("group_create", owner=owner, name=f"网店卖家交流群{owner}",
                                   members=["wmA" + owner])

            async def known() -> bool:
                async with db.reader() as session:
                    groups = list(await session.scalars(select(CustomerGroup)))
                return len(groups) == 2 and all(g.segment == "online" for g in groups)
            await wait_until(known, 10)
            morning = datetime.now(SHANGHAI).replace(hour=8, minute=5, second=0,
                                                     microsecond=0)
            assert (await post_due(db, CALENDAR, morning, 1000002)).queued == 2

            async def created() -> bool:
                async with db.reader() as session:
                    posts = list(await session.scalars(select(CalendarPost)))
                return len(posts) == 2 and all(p.msgid for p in posts)
            await wait_until(created, 10)
            async with db.reader() as session:
                posts = {p.target: p for p in await session.scalars(select(CalendarPost))}
            await sim.scenario("confirm_mass_task", msgid=posts["zhangsan"].msgid,
                               userid="zhangsan")
            wecom = app.runtime.wecom
            first = await track(db, wecom, morning + timedelta(hours=1))
            assert (first.confirmed, first.reminded, first.missed) == (1, 0, 0)
            later = await track(db, wecom, morning + timedelta(hours=3))
            assert (later.confirmed, later.reminded, later.missed) == (0, 1, 0)

            async def reminded() -> bool:
                answer = await sim.client.get("/sim/requests", params={
                    "path": "externalcontact/remind_groupmsg_send"})
                return bool(answer.json()["requests"])
            await wait_until(reminded, 10)
            assert (await track(db, wecom, morning + timedelta(hours=4))).reminded == 0
            last = await track(db, wecom, morning + timedelta(hours=25))
            assert (last.confirmed, last.reminded, last.missed) == (0, 0, 1)
            async with db.reader() as session:
                states = {p.target: (p.task_status, p.reminders)
                          for p in await session.scalars(select(CalendarPost))}
            assert states == {"zhangsan": ("confirmed", 0), "lisi": ("missed", 1)}

            async def cancelled() -> bool:  # a late confirmation cannot use a later day
                answer = await sim.client.get("/sim/requests", params={
                    "path": "externalcontact/cancel_groupmsg_send"})
                return [r["body"]["msgid"] for r in answer.json()["requests"]] == [
                    posts["lisi"].msgid]
            await wait_until(cancelled, 10)
            # Deliveries zhangsan never got as a task do not lower his rate: one skipped
            # (past its grace) and one WeCom refused to create.
            async with db.unit_of_work() as session:
                for key, status, task in (("skipped", "skipped", None),
                                          ("refused", "queued", "failed")):
                    session.add(CalendarPost(
                        key=key, segment="online", day=f"{morning:%Y-%m-%d}", at=morning,
                        transport="mass_task", target="zhangsan", posts="evening",
                        status=status, task_status=task))
            async with db.reader() as session:
                lines = await report(session, morning - timedelta(days=1))
            owners = lines[lines.index("by owner:") + 1:lines.index("by post:")]
            assert [line.split()[0] for line in owners] == ["lisi", "zhangsan"]
            assert owners[0].endswith("0.0%") and owners[1].endswith("100.0%")
            assert lines[0].endswith(": 2")  # the two tasks the owners received
            assert "online morning" in lines[-1]


def test_the_report_command(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = str(env_file(tmp_path, db_url))
    shown = CliRunner().invoke(cli, ["calendar", "report", "--since", "7d", "--env-file", env])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0].endswith(": 0")
    bad = CliRunner().invoke(cli, ["calendar", "report", "--since", "forever",
                                   "--env-file", env])
    assert bad.exit_code == 2
