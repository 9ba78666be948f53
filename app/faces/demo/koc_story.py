"""The recommender programme (推荐官) over the demo's week: on the first afternoon a few
verified members ask 微信客服 to become recommenders and get their codes; on the next
afternoons friends scan those codes and go through the whole funnel (most verified as
businesses and joining; a consumer, a second account with another member's phone, and a burst
the velocity rule holds for an operator); the settle job credits them, a tier reward is
approved and issued through the platform's webhook (the simulator's stand-in), another waits
for approval; on Monday the 光荣榜 is made for the calendar's slot; once November is over its
ranks are earned; an operator promotes the best recommender to KOC and gives them a topic."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy import func, select

from app.calendar.models import ContentItem
from app.engine.bot.env import Env
from app.faces.demo import driver
from app.faces.demo.calendar_days import Action
from app.faces.demo.population import Person
from app.faces.demo.wire import Wire, wait_for
from app.faces.demo.workspace import OPERATOR
from app.faces.web.runtime import Runtime
from app.flows import Flows
from app.groups.sync import sync_groups
from app.koc import kocs, rewards
from app.koc.models import CODE_READY, EARNED, Recommender, Referral, Reward
from app.members.models import JOINED, LINKED, Member
from handlers.koc import issue_rewards, make_honor_roll, rank_last_month, settle_referrals

ENROL_AT, REFER_AT, HONOR_AT, OPERATOR_AT = "12:00", "14:00", "09:00", "17:00"
RECOMMENDERS = 4
TOPIC_TITLE = "年货季备货，大家都在进什么？"
# Who each recommender brings, on which of the programme's days (0: the day they enrol):
# "b" a business who verifies and joins, "c" a consumer, "d" a second account with another
# member's phone; the last recommender's four friends in one afternoon are a burst (koc.yaml's
# burst.max is 3 in the demo's copy).
PLAN = {0: ("bbb", "bbc", "db", "bbbb"), 1: ("", "b", "", "")}


@dataclass
class KocTally:
    recommenders: int = 0
    referees: Counter[str] = field(default_factory=Counter)  # by kind of friend
    issued: int = 0
    honor_rolls: int = 0
    koc: int | None = None  # the member promoted


@dataclass
class KocStory:
    wire: Wire
    runtime: Runtime
    open_kfid: str
    template: Person  # any person: referees are copies with their own ids and fates
    tally: KocTally = field(default_factory=KocTally)
    states: list[str] = field(default_factory=list)  # each recommender's code state
    _made: int = 0

    def actions(self, number: int, day: date) -> tuple[tuple[str, Action], ...]:
        """What the programme does on day `number` (1-based) of the week."""
        extra: list[tuple[str, Action]] = []
        if number == 1:
            extra.append((ENROL_AT, self._enrol))
        if number - 1 in PLAN:
            extra.append((REFER_AT, self._refer_day(number - 1)))
        if day.isoweekday() == 1 and number > 1:
            extra.append((HONOR_AT, self._honor_roll))
        if number == 2 or (day.day == 1 and number > 1):
            extra.append((OPERATOR_AT, self._operator))
        return tuple(extra)

    @property
    def env(self) -> Env[Flows]:
        return Env(self.runtime.settings, self.runtime.flows, self.runtime.db,
                   self.runtime.wecom)

    async def _enrol(self, _now: datetime) -> None:
        async with self.wire.db.reader() as session:
            asking = list(await session.scalars(select(Member.external_userid).where(
                Member.status == JOINED, Member.link_state == LINKED,
                Member.identity_type != "consumer").order_by(Member.id).limit(RECOMMENDERS)))
        for external_userid in asking:
            await self.wire.scenario("kf_message", open_kfid=self.open_kfid, text="推荐官",
                                     external_userid=external_userid)
        await wait_for(lambda: self._codes_ready(len(asking)), "the recommenders' codes")
        await self.wire.quiet()  # each code sent in their kf conversation
        koc = self.runtime.flows.koc
        assert koc is not None
        async with self.wire.db.reader() as session:
            short_ids = list(await session.scalars(select(Recommender.short_id)
                                                   .order_by(Recommender.id)))
        self.states = [koc.state_of(s) for s in short_ids]
        self.tally.recommenders = len(self.states)

    async def _codes_ready(self, count: int) -> bool:
        async with self.wire.db.reader() as session:
            ready = await session.scalar(select(func.count()).select_from(Recommender).where(
                Recommender.code == CODE_READY))
        return ready == count

    def _refer_day(self, offset: int) -> Action:
        async def refer(_now: datetime) -> None:
            people = [self._referee(state, kind) for state, kinds in
                      zip(self.states, PLAN[offset], strict=False) for kind in kinds]
            if people:
                await self._through_the_funnel(people)
                await settle_referrals(self.env)
        return refer

    def _referee(self, state: str, kind: str) -> Person:
        self._made += 1
        n = self._made
        self.tally.referees[kind] += 1
        return replace(self.template, number=900 + n, external_userid=f"wmDemoRef{n:03d}",
                       channel="ref", slot=None, state=state, staff=self._ref_staff(),
                       platform_user_id=f"r{n:05d}", identity_type=(
                           "consumer" if kind == "c" else "physical_shop"),
                       phone=("d" if kind == "d" else "") + f"1{40 + n}{n:04d}5678",
                       in_directory=False, opens_form=True, submits=True,
                       approved_by_reviewer=True, joins=True, leaves_at=None)

    def _ref_staff(self) -> str:
        koc = self.runtime.flows.koc
        assert koc is not None
        return self.runtime.flows.funnel.channels[koc.channel].staff[0]

    async def _through_the_funnel(self, people: list[Person]) -> None:
        people = [await self._with_phone(p) for p in people]
        links = await driver.welcome_links(self.wire,
                                           await driver.add_friends(self.wire, people))
        await self.wire.quiet()
        await driver.fill_forms(self.wire, people, links)
        await self.wire.quiet()
        await self._review({p.external_userid for p in people})
        await driver.scan_codes(self.wire, people, links)

    async def _with_phone(self, person: Person) -> Person:
        """A second account claims the phone of the newest verified member."""
        if not person.phone.startswith("d"):
            return person
        async with self.wire.db.reader() as session:
            phone = await session.scalar(select(Member.phone).where(
                Member.link_state == LINKED, Member.phone.is_not(None),
                Member.external_userid.not_like("wmDemoRef%")).order_by(Member.id.desc()))
        return replace(person, phone=phone or person.phone[1:])

    async def _review(self, referees: set[str]) -> None:
        """A reviewer approves the referees; one whose phone another member holds is approved
        by moving the link (they are that member's second account, the reviewer decides)."""
        queue = await self.wire.api("GET", "/api/reviews", params={"status": "pending",
                                                                   "limit": 500})
        for row in (r for r in queue if r["external_userid"] in referees):
            move = "move" if row.get("held_by") else "approve"
            await self.wire.api("POST", f"/api/reviews/{row['id']}/{move}",
                                json={"reviewer": "op_wang"})
        await self.wire.quiet()

    async def _honor_roll(self, _now: datetime) -> None:
        """`groups sync --full` reads the groups' nicknames, then the week's 光荣榜 is made."""
        runtime = self.runtime
        staff = sorted({s for c in runtime.flows.funnel.channels.values() for s in c.staff})
        await sync_groups(runtime.db, runtime.wecom, runtime.flows.routing, staff, full=True)
        await make_honor_roll(self.env)
        async with self.wire.db.reader() as session:
            self.tally.honor_rolls = await session.scalar(
                select(func.count()).select_from(ContentItem).where(
                    ContentItem.column_name == "honor_roll")) or 0

    async def _operator(self, now: datetime) -> None:
        """Rewards earned are approved (the first) or left for the console; last month's
        ranks are earned; the best recommender is promoted to KOC and given a topic."""
        await rank_last_month(self.env)
        async with self.wire.db.unit_of_work() as session:
            earned = list(await session.scalars(select(Reward.id).where(
                Reward.status == EARNED, Reward.kind == "tier").order_by(Reward.id)))
            if earned and not self.tally.issued:
                await rewards.decide(session, earned[:1], "approve", OPERATOR, now)
        await issue_rewards(self.env)
        self.tally.issued = len((await self.wire.sim_state("platform/rewards"))["rewards"])
        if self.tally.koc is None:
            await self._promote(now)

    async def _promote(self, now: datetime) -> None:
        koc = self.runtime.flows.koc
        assert koc is not None
        async with self.wire.db.unit_of_work() as session:
            best = await session.scalar(
                select(Member).join(Recommender, Recommender.member_id == Member.id)
                .join(Referral, Referral.recommender_id == Recommender.id)
                .group_by(Member.id).order_by(func.count(Referral.id).desc(), Member.id)
                .limit(1))
            if best is None:
                return
            await kocs.set_koc(session, best, True, OPERATOR, now)
            await kocs.assign(session, best, kocs.TOPIC, TOPIC_TITLE, OPERATOR, now, koc,
                              self.runtime.settings.agent_id)
            self.tally.koc = best.id
        await self.wire.quiet()


async def koc_line(wire: Wire, tally: KocTally) -> str:
    """What the programme's week added up to, from the database."""
    async with wire.db.reader() as session:
        referrals = Counter({f"{s}{':' + r if r else ''}": n for s, r, n in await session.execute(
            select(Referral.status, Referral.reason, func.count()).group_by(
                Referral.status, Referral.reason))})
        ledger = Counter({f"{k}:{s}": n for k, s, n in await session.execute(
            select(Reward.kind, Reward.status, func.count()).group_by(Reward.kind,
                                                                      Reward.status))})
    tiers = sum(n for key, n in ledger.items() if key.startswith("tier:"))
    ranks = sum(n for key, n in ledger.items() if key.startswith("rank:"))
    rejected = ", ".join(f"{n} {key.split(':')[1]}" for key, n in sorted(referrals.items())
                         if key.startswith("rejected:"))
    koc = f"member #{tally.koc} promoted to KOC and given a topic" if tally.koc else "no KOC"
    return (f"{tally.recommenders} members asked in kf and got their codes; "
            f"{sum(tally.referees.values())} friends came through them: "
            f"{referrals['credited']} credited, rejected {rejected or 'none'}, "
            f"{referrals['flagged:burst']} held as a burst; rewards: {tiers} tier "
            f"({ledger['tier:issued']} issued through the platform's webhook, "
            f"{ledger['tier:earned']} awaiting approval), {ranks} November ranks; "
            f"光荣榜 items: {tally.honor_rolls}; {koc}")
