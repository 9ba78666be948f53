"""The demo's phases, each a few numbered steps with what they counted: the operators'
groundwork, the funnel, the fast-forwarded calendar."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import func, select

from app.demo import driver, groundwork
from app.demo.calendar_days import FastForward, first_day
from app.demo.output import Progress
from app.demo.population import Person, Population
from app.demo.texts import DemoTexts
from app.demo.wire import Wire
from app.groups.models import CustomerGroup
from app.kf.models import UnansweredQuestion
from app.services import Services
from app.verify.models import APPROVED, AUTO_REVIEWER, PENDING, Verification


async def prepare_wecom(wire: Wire, services: Services, texts: DemoTexts, days: int,
                        progress: Progress) -> None:
    progress.start("WeCom set-up")
    made = await groundwork.make_groups(wire, services.flows.routing,
                                        groundwork.staff_of(services))
    synced = await groundwork.sync_all(services)
    progress.done(f"{made} customer groups made by staff; {synced}")
    progress.start("calendar content")
    queued = await groundwork.queue_content(wire, texts, services.flows.calendar, days)
    progress.done(f"{queued} items queued for the calendar's columns")


async def push_funnel(wire: Wire, population: Population, texts: DemoTexts,
                      progress: Progress) -> None:
    links = await _arrivals(wire, population, progress)
    await _verification(wire, population.people, links, texts, progress)
    progress.start("group codes")
    joined = await driver.scan_codes(wire, population.people, links)
    progress.done(f"{joined} members scanned their group code; {await _filled(wire)}")


async def ask_questions(wire: Wire, people: list[Person], texts: DemoTexts, open_kfid: str,
                        progress: Progress) -> None:
    progress.start("kf questions")
    asked = await driver.ask_kf(wire, people, texts.questions, open_kfid)
    async with wire.db.reader() as session:
        kept = await session.scalar(select(func.count()).select_from(UnansweredQuestion))
    progress.done(f"{asked} members asked; {asked - (kept or 0)} answered by keywords, "
                  f"{kept or 0} kept for the console's keyword page")


async def _arrivals(wire: Wire, population: Population, progress: Progress) -> dict[str, str]:
    """The app's ad slots and the friend adds; each member's verification link."""
    people = population.people
    progress.start("app ad slots")
    app = await driver.report_app_steps(wire, population)
    progress.done(" → ".join(f"{n} {step}" for step, n in app.items()))
    progress.start("friend adds")
    links = await driver.welcome_links(wire, await driver.add_friends(wire, people))
    await wire.quiet()  # each add recorded as a member (the welcome goes out before that)
    channels = Counter(p.channel for p in people).most_common()
    progress.done(f"{len(people)} ({', '.join(f'{c} {n}' for c, n in channels)}); "
                  f"{len(links)} welcomes with a verification link reached WeCom")
    return links


async def _verification(wire: Wire, people: list[Person], links: dict[str, str],
                        texts: DemoTexts, progress: Progress) -> None:
    progress.start("verification")
    imported = await driver.import_directory(wire, people)
    await driver.fill_forms(wire, people, links)
    await wire.quiet()
    progress.done(f"{sum(p.opens_form for p in people)} opened the form; "
                  f"{await _submissions(wire)}; directory: {imported} platform users")
    progress.start("review")
    decided = await driver.review(wire, people, texts)
    reviewers = ", ".join(sorted({p.reviewer for p in people}))
    holder = await driver.claim_a_linked_phone(wire, people)
    second = (f"; a second account claimed member #{holder}'s phone: it waits, flagged"
              if holder is not None else "")
    progress.done(f"{decided['approved'] + decided['rejected']} decided by {reviewers}: "
                  f"{decided['approved']} approved, {decided['rejected']} photos rejected, "
                  f"{decided['left']} left for the console's review page{second}")


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


async def fast_forward(wire: Wire, services: Services, population: Population, days: int,
                       seed: int, progress: Progress) -> tuple[date | None, list[str]]:
    """The simulated days (none: skipped); the first day and each day's line."""
    if days == 0:
        return None, []
    first = first_day()
    progress.start("calendar")
    progress.done(f"fast-forward {days} days from {first:%Y-%m-%d}: posts, confirmations, "
                  "tracking, onboarding")
    ff = FastForward(wire, services, population.people, days, random.Random(seed))
    lines = []
    for n in range(days):
        stats = await ff.day(n + 1, first + timedelta(days=n))
        lines.append(stats.line(n + 1))
        progress.write("      " + lines[-1])
    closing = await ff.close(first + timedelta(days=days))
    progress.write(f"      and the day after: {closing.missed} of the last day's tasks missed "
                   "(no confirmation within 24 h)")
    return first, lines
