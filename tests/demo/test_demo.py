"""`sopbot demo` end to end, in this process: the real command on a free port with a small
population and two simulated days, then what it left in its database and what it printed;
and the same seed counting the same funnel twice."""

from __future__ import annotations

import io
import json
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.archive.models import ArchivedMessage, GroupActivityDay
from app.calendar.announcements import SCHEDULED
from app.calendar.models import Announcement, CalendarPost, ContentItem, SopRun
from app.calendar.planner import MASS_TASK
from app.engine.config import SHANGHAI
from app.engine.db import utcnow
from app.engine.logs import configure_logging
from app.engine.outbox.models import OutboxMessage
from app.faces.cli.main import cli
from app.faces.demo import output
from app.faces.demo.driver import SECOND_ACCOUNT
from app.faces.demo.options import Options
from app.faces.demo.output import Progress
from app.faces.demo.run import run
from app.faces.demo.summary import RECEIVED
from app.faces.demo.workspace import OPERATOR
from app.flows import load_flows
from app.funnel import steps
from app.funnel.models import FunnelEvent
from app.groups.models import CustomerGroup, GroupMember
from app.kf.models import KeywordHit, UnansweredQuestion
from app.koc.models import KocMember, Recommender, Referral, Reward
from app.members.models import LINKED, Member
from app.verify.models import Verification
from tests.conftest import AES_KEY, REPO, TOKEN, serve_app
from tests.console.conftest import log_in, new_client
from tests.console.test_funnel_page import parse

CHANNELS = list(load_flows(REPO / "sop_flows").funnel.channels)
WELCOMES = "externalcontact/send_welcome_msg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory of its own, the repository's flows, the test logging after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOPBOT_FLOWS", str(REPO / "sop_flows"))
    monkeypatch.setenv("SOPBOT_KEYWORDS", str(REPO / "keywords.yaml"))
    yield tmp_path
    configure_logging("info", "json", secrets=[TOKEN, AES_KEY])  # the demo logged to its file


def rows(db: Path, *columns: Any) -> list[Any]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            return list(session.execute(select(*columns)))
    finally:
        engine.dispose()


def test_the_demo_pushes_its_population_through_the_funnel_and_the_calendar(
        workdir: Path) -> None:
    shown = CliRunner().invoke(cli, ["demo", "--members", "40", "--days", "2", "--seed", "3",
                                     "--port", str(free_port()), "--exit"])
    assert shown.exit_code == 0, shown.output
    db = workdir / "demo" / "sopbot-demo.db"
    counted = _funnel(db)
    chain = [counted[s] for s in (steps.TARGETED, steps.IMPRESSION, steps.CLICK, steps.LANDING)]
    assert chain == sorted(chain, reverse=True) and chain[-1] > 0
    # The 40, one's second account claiming their phone (issue 14 item 2), and the friends
    # the recommenders brought through their codes.
    referees = _koc(db, shown.stdout)
    assert counted[steps.FRIEND_ADDED] == counted[steps.WELCOME_SENT] == 41 + referees
    later = [counted[s] for s in (steps.WELCOME_SENT, steps.VERIFY_OPENED, steps.SUBMITTED)]
    assert later == sorted(later, reverse=True)
    pending = [status for status, in rows(db, Verification.status) if status == "pending"]
    assert pending  # the newest of the review queue waits for the console
    assert counted[steps.SUBMITTED] == (counted[steps.APPROVED] + counted[steps.REJECTED]
                                        + len(pending))
    assert counted[steps.APPROVED] == counted[steps.ROUTED] >= counted[steps.JOINED] > 0
    assert counted[steps.REJECTED] > 0 and counted[steps.VERIFY_OPENED] < 40 + referees
    _groups_have_members(db, counted[steps.JOINED] - counted[steps.LEFT_GROUP])
    _calendar_days(db)
    out = shown.stdout
    # One per add.
    assert f"WeCom (the simulator) accepted: {41 + referees} {RECEIVED[WELCOMES]}" in out
    _second_account_waits_flagged(db)
    table = out[out.index("Funnel by channel"):out.index("WeCom (the simulator)")]
    assert all(channel in table.splitlines()[1] for channel in CHANNELS)
    assert "day 1 " in out and "day 2 " in out and "Console" not in out  # --exit
    _kf_questions(db)
    _group_talk(db, out)
    _the_week_that_just_ended(db, days=2)
    # The operator's /announce on the last day was held (its groups' message of the day was
    # planned) and then put into tomorrow's message (issue 14 item 5).
    assert [status for status, in rows(db, Announcement.status)] == [SCHEDULED]
    assert _warnings(workdir / "demo" / "sopbot-demo.log") <= EXPECTED_WARNINGS


# What the demo's own story logs at warning level: owners who miss a task, and a segment whose
# groups are all full (the demo makes three groups a segment and scales their size down, so
# the operators are told to open the next one). A warning about the demo's own configuration
# is not: a robot the calendar names but the demo never set up, a column it queued nothing for.
# (The service's clock moves with WeCom's, so no access token expires under it.)
EXPECTED_WARNINGS = {"calendar_task_missed", "group_pool_empty", "referral_flagged"}


def _koc(db: Path, out: str) -> int:
    """The recommender programme's week (app/faces/demo/koc_story.py): recommenders asked in
    kf and got codes; their friends were credited, rejected (a consumer, a second account's
    phone) or held as a burst; a bronze reward was issued through the platform's webhook and
    another waits; a KOC was promoted and given a topic. The number of friends they brought."""
    codes = [code for code, in rows(db, Recommender.code)]
    assert len(codes) >= 3 and set(codes) == {"ready"}
    referrals = Counter(f"{s}:{r}" for s, r in rows(db, Referral.status, Referral.reason))
    assert referrals["credited:None"] >= 3 and referrals["flagged:burst"] == 4
    assert referrals["rejected:consumer"] == 1
    ledger = {(kind, status, ref is not None) for kind, status, ref in rows(
        db, Reward.kind, Reward.status, Reward.issue_ref)}
    assert ("tier", "issued", True) in ledger and ("tier", "earned", False) in ledger
    assert len(rows(db, KocMember.id)) == 1
    assert [c for c, s in rows(db, ContentItem.column_name, ContentItem.segment)
            if c == "topic" and s is not None] == ["topic"]
    assert "推荐官" in out and "credited" in out
    return sum(u.startswith("wmDemoRef") for u, in rows(db, Member.external_userid))


def _warnings(log: Path) -> set[str]:
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    return {_warning(line) for line in lines if line.get("level") in ("warning", "error")}


def _warning(line: dict[str, Any]) -> str:
    expired = "errcode 42001" in line.get("error", "")
    return f"{line['event']}: errcode 42001" if expired else line["event"]


def _second_account_waits_flagged(db: Path) -> None:
    """The second account that sent a verified member's phone with a 64×64 square waits for a
    reviewer, flagged with the member who holds the phone and the photo's size; the phone stays
    linked to its first member only."""
    members = {external: (member_id, state, phone) for member_id, external, state, phone in rows(
        db, Member.id, Member.external_userid, Member.link_state, Member.phone)}
    second_id, second_state, phone = members[SECOND_ACCOUNT]
    assert second_state != LINKED
    [holder] = [m for m, state, held in members.values() if held == phone and state == LINKED]
    [(status, checks)] = [(status, checks) for member, status, checks in rows(
        db, Verification.member_id, Verification.status, Verification.checks)
        if member == second_id]
    assert status == "pending"
    assert {"check": "phone_held", "member_id": holder} in checks
    assert "photo_small" in {check["check"] for check in checks}


def _the_week_that_just_ended(db: Path, days: int) -> None:
    """Issue 14 item 12: the simulated days end yesterday, newcomers arrive on each of them,
    and the process's clock is the wall clock again afterwards (the console's today)."""
    today = datetime.now(SHANGHAI).date()
    week = {(today - timedelta(days=n)).isoformat() for n in range(1, days + 1)}
    assert {day for day, in rows(db, CalendarPost.day)} == week
    added = {at.astimezone(SHANGHAI).date().isoformat() for step, at in rows(
        db, FunnelEvent.step, FunnelEvent.at) if step == steps.FRIEND_ADDED}
    assert added == week
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=1)


def _group_talk(db: Path, out: str) -> None:
    """Issue 16: the evening's talk in the groups reached the chat archive and the service read
    it (every message, the recalled ones without their text) into per-group daily rollups."""
    messages = rows(db, ArchivedMessage.sender, ArchivedMessage.msgtype,
                    ArchivedMessage.recalled, ArchivedMessage.text)
    said = [m for m in messages if m.msgtype == "text"]
    assert {m.sender.startswith("wmDemo") for m in said} == {True, False}  # members, staff
    recalled = [m for m in said if m.recalled]
    assert recalled and all(m.text is None for m in recalled)
    assert len([m for m in messages if m.msgtype == "revoke"]) == len(recalled)
    counted = sum(n for n, in rows(db, GroupActivityDay.messages))
    assert counted == len(said) - len(recalled)
    line = next(line for line in out.splitlines() if "group talk" in line)
    assert f"the service read {len(messages)} archive records" in line


def _kf_questions(db: Path) -> None:
    """Members asked 微信客服, so the console's keyword page has answers and open questions."""
    assert rows(db, KeywordHit.rule_id) and rows(db, UnansweredQuestion.text)


def _funnel(db: Path) -> Counter[str]:
    """Distinct people per step (a member, or the app's user before the add)."""
    return Counter(step for step, _ in {
        (step, member or user) for step, member, user in rows(
            db, FunnelEvent.step, FunnelEvent.member_id, FunnelEvent.platform_user_id)})


def _groups_have_members(db: Path, staying: int) -> None:
    members = Counter(chat for chat, type_, left in rows(
        db, GroupMember.chat_id, GroupMember.type, GroupMember.left_at) if type_ == 2 and not left)
    assert sum(members.values()) == staying
    in_groups = [chat for chat, in rows(db, Member.group_chat_id) if chat]
    assert set(members) <= set(in_groups)
    filled = [chat for chat, at in rows(db, CustomerGroup.chat_id, CustomerGroup.filled_at) if at]
    assert filled and {chat for chat, in rows(db, SopRun.chat_id)} == set(filled)


def _calendar_days(db: Path) -> None:
    """Mass tasks on both days, at most one per group a day, confirmed and missed ones."""
    tasks = [(day, key, status) for day, key, status, transport in rows(
        db, CalendarPost.day, CalendarPost.key, CalendarPost.task_status,
        CalendarPost.transport) if transport == MASS_TASK]
    assert len({day for day, _, _ in tasks}) == 2
    assert {"confirmed", "missed"} <= {status for _, _, status in tasks}
    requests = dict(rows(db, OutboxMessage.idempotency_key, OutboxMessage.request))
    per_day = Counter((day, chat) for day, key, _ in tasks
                      for chat in json.loads(requests[key])["chat_id_list"])
    assert per_day and max(per_day.values()) == 1


async def test_the_same_seed_counts_the_same_funnel(workdir: Path) -> None:
    counts = []
    for n in range(2):
        options = Options(members=30, days=0, seed=11, exit=True, port=free_port(),
                          root=workdir / f"run{n}", flows=REPO / "sop_flows",
                          keywords=REPO / "keywords.yaml")
        result = await run(options, io.StringIO())
        counts.append(result.funnel)
    # The 30, and one's second account claiming their phone.
    assert counts[0] == counts[1] and counts[0][steps.FRIEND_ADDED] == 31
    assert counts[0][steps.JOINED] > 0


async def test_the_demo_operator_can_log_in_with_the_printed_password(workdir: Path) -> None:
    out = io.StringIO()
    options = Options(members=7, days=7, exit=True, port=free_port(), root=workdir / "demo",
                      flows=REPO / "sop_flows", keywords=REPO / "keywords.yaml")
    result = await run(options, out)
    assert result.password and result.password not in out.getvalue()  # --exit shows no login
    shown = io.StringIO()  # what the demo prints when it stays up
    output.console(Progress(shown, 1), "http://127.0.0.1:8000", OPERATOR, result.password,
                   result.workspace, result.first_day)
    printed = {line.split()[0]: line for line in shown.getvalue().splitlines() if line.strip()}
    assert printed["Login"].split()[1:4] == [OPERATOR, "/", result.password]
    # The week's link: the console's own "last 7 days" end today, one short of the week.
    week = printed["The"].split("http://127.0.0.1:8000")[1]
    # The console of the demo's database takes that login (the operator is in its settings).
    async with serve_app(result.settings.model_copy(update={"outbox_sender": False}),
                         run_worker=False) as app:
        answer = await log_in(app.client, OPERATOR, result.password)
        assert answer.status_code == 303, answer.text
        assert (await app.client.get("/console/reviews")).status_code == 200
        adds = parse((await app.client.get(week)).text).charts["all"]["friend_added"][0]
        assert adds == result.funnel[steps.FRIEND_ADDED] > 0  # the whole week, its first day too
        last7 = parse((await app.client.get("/console/funnel")).text).charts["all"]
        assert last7["friend_added"][0] < adds  # day 1's newcomers are before "last 7 days"
        async with new_client(app) as stranger:
            wrong = await log_in(stranger, OPERATOR, result.password + "x")
            assert wrong.status_code != 303
