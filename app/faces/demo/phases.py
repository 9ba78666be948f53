"""The demo's phases, each a numbered step with what it counted: the operators' groundwork the
day before the week, the week that just ended (each morning that day's newcomers go through
the whole funnel, then the calendar plays the day, and each evening the day's talk in the
groups reaches the chat archive), and what the week added up to."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from app.archive.models import ArchivedMessage, ArchiveReader, GroupActivityDay
from app.faces.demo import driver, groundwork
from app.faces.demo.calendar_days import Action, FastForward, first_day
from app.faces.demo.group_talk import Story, TalkGroup
from app.faces.demo.koc_story import KocStory, KocTally, koc_line
from app.faces.demo.output import Progress
from app.faces.demo.population import Person, Population
from app.faces.demo.texts import DemoTexts
from app.faces.demo.wire import Wire, wait_for
from app.faces.demo.workspace import OPERATOR
from app.faces.web.runtime import Runtime
from app.groups.models import CustomerGroup
from app.kf.models import UnansweredQuestion
from app.verify.models import APPROVED, AUTO_REVIEWER, PENDING, Verification

ARRIVE_AT = "09:30"  # when each day's newcomers reach the funnel (its steps take seconds)
ANNOUNCE_AT, ANNOUNCED_TO = "11:00", "shop_south"  # the last day: today's message is planned
TALK_AT = "22:30"  # the day's talk in the groups (10:00 to 21:45) reaches the archive


async def prepare_wecom(wire: Wire, runtime: Runtime, texts: DemoTexts, days: int,
                        progress: Progress) -> None:
    progress.start("WeCom set-up")
    made = await groundwork.make_groups(wire, runtime.flows.routing,
                                        groundwork.staff_of(runtime))
    synced = await groundwork.sync_all(runtime)
    progress.done(f"{made} customer groups made by staff; {synced}")
    progress.start("calendar content")
    queued = await groundwork.queue_content(wire, texts, runtime.flows.calendar, days)
    progress.done(f"{queued} items queued for the calendar's columns")


@dataclass
class Tally:
    """What the funnel counted over the arrivals so far."""

    app: Counter[str] = field(default_factory=Counter)
    added: list[Person] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # each member's verification link
    imported: int = 0
    decided: Counter[str] = field(default_factory=Counter)
    joined: int = 0
    asked: int = 0
    second_account_of: int | None = None  # the member whose phone a second account claimed
    announced: tuple[str, str] | None = None  # the operator's /announce: held as, ended as
    talk: Counter[str] = field(default_factory=Counter)  # group posts by kind, and recalls
    koc_answers: int = 0  # answers by the member who answers most
    quiet_days: int = 0  # the last days one group was quiet for
    koc: KocTally | None = None  # the recommender programme's week (none without koc.yaml)


@dataclass
class Arrivals:
    """The funnel, played for one group of newcomers at a time."""

    wire: Wire
    texts: DemoTexts
    open_kfid: str  # the simulator's 微信客服 account members write to
    tally: Tally = field(default_factory=Tally)

    async def arrive(self, cohort: Population, last: bool) -> str:
        """The cohort's ad-slot steps, adds, forms, reviews, group codes and questions; what
        the day counted. The `last` cohort ends with a second account claiming a phone."""
        wire, tally = self.wire, self.tally
        tally.app += await driver.report_app_steps(wire, cohort)
        links = await driver.welcome_links(wire, await driver.add_friends(wire, cohort.people))
        tally.added += cohort.people
        tally.links |= links
        await wire.quiet()  # each add recorded as a member (the welcome goes out before that)
        tally.imported += await driver.import_directory(wire, cohort.people)
        await driver.fill_forms(wire, cohort.people, links)
        await wire.quiet()
        tally.decided += await driver.review(wire, tally.added, self.texts, last)
        if last:
            tally.second_account_of = await driver.claim_a_linked_phone(wire, tally.added)
        joined = await driver.scan_codes(wire, tally.added, tally.links)
        tally.joined += joined
        tally.asked += await driver.ask_kf(wire, cohort.people, self.texts.questions,
                                           self.open_kfid, tally.asked)
        return f"{len(cohort.people):>3} added {joined:>3} joined"

    async def announce(self, _now: datetime) -> None:
        """An operator announces to a segment whose groups' message of the day is planned."""
        self.tally.announced = await driver.announce(self.wire, OPERATOR, ANNOUNCED_TO,
                                                     self.texts.announcement)


@dataclass
class Talk:
    """Each evening, the day's talk in the customer groups goes into WeCom's chat archive (the
    simulator's), and the service reads it (when it reads the archive, which the demo has it
    do) before the day goes on."""

    wire: Wire
    story: Story
    reads: bool  # whether the service reads the archive

    async def day(self, number: int, day: date) -> None:
        sim_groups = (await self.wire.sim_state("groups"))["groups"]
        posts = self.story.day(number, day, [TalkGroup.from_sim(g) for g in sim_groups])
        if not posts:
            return
        answer = await self.wire.scenario("group_messages",
                                          messages=[post.body() for post in posts])
        last = max(answer["seqs"])
        for post, msgid in zip(posts, answer["msgids"], strict=True):
            if post.recall_by is not None:
                at = post.at + timedelta(seconds=post.recall_after_s)
                last = (await self.wire.scenario("group_recall", msgid=msgid,
                                                 by=post.recall_by, at=at.timestamp()))["seq"]
        await self.wire.quiet()  # msgaudit_notify recorded
        if self.reads:
            await wait_for(lambda: self._read(last), "the service reading the group talk")

    async def _read(self, seq: int) -> bool:
        async with self.wire.db.reader() as session:
            read = await session.scalar(select(func.max(ArchiveReader.seq)))
        return (read or 0) >= seq


async def play_week(wire: Wire, runtime: Runtime, population: Population, arrivals: Arrivals,
                    days: int, seed: int, progress: Progress) -> tuple[date | None, list[str]]:
    """The simulated days (none: everyone arrives now, no calendar); the first day and each
    day's line."""
    if days == 0:
        progress.start("arrivals")
        progress.done(await arrivals.arrive(population, last=True))
        return None, []
    first = first_day(days)
    progress.start("the week")
    progress.done(f"{days} days from {first:%Y-%m-%d} to yesterday: newcomers each morning, "
                  "posts, confirmations, tracking, onboarding")
    ff = FastForward(wire, runtime, population.people, days, random.Random(seed))
    story = Story(arrivals.texts.group_talk, {p.external_userid: p for p in population.people},
                  days, seed, tally=arrivals.tally.talk)
    talk = Talk(wire, story, runtime.settings.archive_secret is not None)
    koc = (KocStory(wire, runtime, arrivals.open_kfid, population.people[0])
           if runtime.flows.koc is not None and population.people else None)
    arrivals.tally.koc = koc.tally if koc else None
    lines = []
    arrived: dict[int, str] = {}  # each day's arrivals, counted
    for n in range(days):

        async def morning(_now: datetime, n: int = n) -> None:
            arrived[n] = await arrivals.arrive(population.cohort(n, days), n == days - 1)

        async def evening(_now: datetime, n: int = n) -> None:
            await talk.day(n + 1, first + timedelta(days=n))
        extra: tuple[tuple[str, Action], ...] = ((ARRIVE_AT, morning), (TALK_AT, evening))
        if n == days - 1:
            extra += ((ANNOUNCE_AT, arrivals.announce),)
        if koc is not None:
            extra += koc.actions(n + 1, first + timedelta(days=n))
        stats = await ff.day(n + 1, first + timedelta(days=n), extra)
        lines.append(stats.line(n + 1, arrived[n]))
        progress.write("      " + lines[-1])
    arrivals.tally.koc_answers = story.answers_by[story.koc] if story.koc else 0
    if story.quiet is not None:
        arrivals.tally.quiet_days = days - story.quiet_since + 1
    closing = await ff.close()
    progress.write(f"      and today so far: {closing.missed} of the week's tasks missed "
                   "(no confirmation within 24 h)")
    return first, lines


async def totals(wire: Wire, population: Population, tally: Tally, progress: Progress) -> None:
    """What the week's arrivals added up to, step by step."""
    progress.start("the funnel")
    progress.done(f"{len(tally.added)} friend adds over the days")
    app = tally.app
    progress.write("      app ad slots   " + " → ".join(f"{app[s]} {s}" for s in app))
    channels = Counter(p.channel for p in tally.added).most_common()
    progress.write(f"      friend adds    {len(tally.added)} "
                   f"({', '.join(f'{c} {n}' for c, n in channels)}); {len(tally.links)} "
                   "welcomes with a verification link reached WeCom")
    people = population.people
    progress.write(f"      verification   {sum(p.opens_form for p in people)} opened the form; "
                   f"{await _submissions(wire)}; directory: {tally.imported} platform users")
    reviewers = ", ".join(sorted({p.reviewer for p in people}))
    decided = tally.decided
    second = (f"; a second account claimed member #{tally.second_account_of}'s phone: it "
              "waits, flagged" if tally.second_account_of is not None else "")
    progress.write(f"      review         {decided['approved'] + decided['rejected']} decided "
                   f"by {reviewers}: {decided['approved']} approved, {decided['rejected']} "
                   f"photos rejected, {decided['left']} left for the console's review "
                   f"page{second}")
    progress.write(f"      group codes    {tally.joined} members scanned their group code; "
                   f"{await _filled(wire)}")
    async with wire.db.reader() as session:
        kept = await session.scalar(select(func.count()).select_from(UnansweredQuestion)) or 0
    if tally.announced is not None:
        held, final = tally.announced
        progress.write(f"      /announce      to {ANNOUNCED_TO} at {ANNOUNCE_AT} on the last day: "
                       f"{held} (its groups' message of the day was planned), then {final} "
                       "by `/announce tomorrow`")
    progress.write(f"      kf questions   {tally.asked} members asked; {tally.asked - kept} "
                   f"answered by keywords, {kept} kept for the console's keyword page")
    if tally.talk:
        progress.write(f"      group talk     {await _talk(wire, tally)}")
    if tally.koc is not None:
        progress.write(f"      推荐官         {await koc_line(wire, tally.koc)}")


async def _talk(wire: Wire, tally: Tally) -> str:
    """What was said in the groups, and what the service read of it."""
    talk = tally.talk
    said = sum(n for kind, n in talk.items() if kind != "recall")
    days_ = f"{tally.quiet_days} days" if tally.quiet_days > 1 else "day"
    quiet = f"; one group quiet for its last {days_}" if tally.quiet_days else ""
    async with wire.db.reader() as session:
        read = await session.scalar(select(func.count()).select_from(ArchivedMessage)) or 0
        days = await session.scalar(select(func.count()).select_from(GroupActivityDay)) or 0
    return (f"{said} messages: {talk['intro']} newcomers introduced themselves, "
            f"{talk['question']} questions answered ({tally.koc_answers} by one member), "
            f"{talk['open_question']} left unanswered, {talk['spam']} ad posts, "
            f"{talk['recall']} recalls{quiet}; the service read {read} archive records into "
            f"{days} group-days")


async def _submissions(wire: Wire) -> str:
    async with wire.db.reader() as session:
        rows = list(await session.execute(select(
            Verification.status, Verification.reviewer, Verification.identity_type)))
    auto = sum(s == APPROVED and r == AUTO_REVIEWER for s, r, _ in rows)
    consumers = sum(identity == "consumer" for _, _, identity in rows)
    pending = sum(s == PENDING for s, _, _ in rows)
    return (f"{len(rows)} submitted: {auto} approved by the directory, {consumers} consumers "
            f"turned away, {pending} to review")


async def _filled(wire: Wire) -> str:
    async with wire.db.reader() as session:
        groups = await session.scalar(select(func.count()).select_from(CustomerGroup))
        filled = await session.scalar(select(func.count()).select_from(CustomerGroup).where(
            CustomerGroup.filled_at.is_not(None)))
    return f"{filled} of {groups} groups reached their ideal size"
