"""/review and the one-to-one record: the list says why a review waits and who holds its phone;
`/review approve` of a held phone says what to do instead; `/review move` moves the link."""

from __future__ import annotations

from app.engine.db import utcnow
from app.members import service as members
from app.members.models import Member
from app.verify import service as verify
from app.verify.models import Verification
from tests.conftest import OPERATOR
from tests.handlers.harness import Bot
from tests.handlers.test_commands import handle_text

PHONE = "13800138000"


async def _member(bot: Bot, external_userid: str, **fields: object) -> int:
    async with bot.session() as session:
        member = await members.create(session, utcnow(), "test", external_userid=external_userid,
                                      staff_userid="zhangsan", channel="organic", phone=PHONE,
                                      identity_type="physical_shop", region="北京", **fields)
        return member.id


async def never_approved(*_: object) -> None:
    raise AssertionError("a claim on a linked phone must wait for a reviewer")


async def test_review_flags_a_held_phone_and_moves_it_only_when_asked(bot: Bot) -> None:
    owner = await _member(bot, "wmOwner", status="joined", link_state="linked")
    claimant = await _member(bot, "wmClaim", status="added")
    async with bot.session() as session:  # the claim as the form stores it
        member = await session.get(Member, claimant)
        assert member is not None
        await verify.submit(session, member, verify.Submission(PHONE, "physical_shop", "北京"),
                            [], bot.flows.verify, utcnow(), never_approved)
    listed = (await handle_text(bot, "/review"))["Content"]
    flagged = (f"#1 实体店 北京 138****8000\n"
               f"  ⚠ 提交时手机号已绑定会员 #{owner}：仍绑定时不能直接通过")
    assert flagged in listed
    refused = (await handle_text(bot, "/review approve 1"))["Content"]
    assert refused.startswith(f"审核 #1 未处理：手机号或平台用户 ID 已绑定会员 #{owner}。")
    assert "/review move 1" in refused
    [row] = await bot.rows(Verification)
    assert row.status == "pending"
    moved = (await handle_text(bot, "/review move 1"))["Content"]
    assert moved == "审核 #1 已处理：通过。"
    found = {m.id: m for m in await bot.rows(Member)}
    assert (found[owner].link_state, found[owner].flag) == (None, "link_moved")
    assert found[claimant].link_state == "linked"
    assert f"wecom:{OPERATOR}" == (await bot.rows(Verification))[0].reviewer
