"""The acquisition funnel, driven from outside as the real world drives it: the app reports its
ad-slot steps to /api/funnel/events, people add a staff member through their channel's 联系我
code (a simulator scenario: WeCom's real callback), WeCom receives the service's welcome with
the member's own verification link, members open and submit the H5 form (a multipart upload),
the platform pushes its user directory, reviewers decide through /api/reviews, and approved
members scan the group code their status page shows. Each function is one step and returns
what it counted; who drops out where was decided by the population."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import func, select

from app.calendar.announcements import HELD
from app.calendar.models import Announcement
from app.engine.db import utcnow
from app.faces.demo.picture import shop_front_png, square_png
from app.faces.demo.population import Person, Population
from app.faces.demo.texts import DemoTexts
from app.faces.demo.wire import DemoError, Wire, each, wait_for
from app.groups.models import GroupPool
from app.kf.models import KeywordHit, UnansweredQuestion
from app.members.models import LINKED, ROUTED, Member

WELCOME = "externalcontact/send_welcome_msg"
LINK = re.compile(r"/verify/[^\s\"'<]+")
BATCH = 500  # events per POST /api/funnel/events (its limit)
LEFT_FOR_THE_CONSOLE = 0.1  # of the review queue: something to try on the console's review page


async def report_app_steps(wire: Wire, population: Population) -> Counter[str]:
    """The app's server reports every targeted user's ad-slot steps, in batches."""
    at = utcnow().isoformat()
    events = [{"event_id": f"{user.platform_user_id}:{step}", "step": step, "at": at,
               "platform_user_id": user.platform_user_id, "channel": user.channel,
               "slot": user.slot}
              for user in population.app_users for step in user.reached]
    for start in range(0, len(events), BATCH):
        await wire.api("POST", "/api/funnel/events", json={"events": events[start:start + BATCH]})
    return Counter(event["step"] for event in events)


async def add_friends(wire: Wire, people: list[Person]) -> dict[str, str]:
    """Each person adds their staff member through their channel's code: their welcome code."""
    async def one(person: Person) -> tuple[str, str]:
        added = await wire.scenario("friend_add", userid=person.staff, state=person.state,
                                    external_userid=person.external_userid)
        return person.external_userid, str(added["welcome_code"])
    return dict(await each(one, people))


async def welcome_links(wire: Wire, codes: dict[str, str], timeout: float = 60) -> dict[str, str]:
    """Once WeCom has accepted every welcome: each member's verification link (its path)."""
    texts: dict[str, str] = {}

    async def all_welcomed() -> bool:
        texts.clear()
        texts.update({r["body"]["welcome_code"]: r["body"]["text"]["content"]
                      for r in await wire.requests_to_wecom(WELCOME) if r["errcode"] == 0})
        return set(codes.values()) <= set(texts)
    await wait_for(all_welcomed, "a welcome for every friend add", timeout)
    links = {}
    for external_userid, code in codes.items():
        if (found := LINK.search(texts[code])) is None:
            raise DemoError(f"the welcome of {external_userid} has no verification link")
        links[external_userid] = found.group(0)
    return links


async def import_directory(wire: Wire, people: list[Person]) -> int:
    """The platform pushes its registered users (phone ↔ platform user id)."""
    rows = [{"platform_user_id": p.platform_user_id, "phone": p.phone}
            for p in people if p.in_directory]
    answer = await wire.api("POST", "/api/platform-users", json=rows)
    return int(answer["created"])


async def fill_forms(wire: Wire, people: list[Person], links: dict[str, str]) -> None:
    """Members open their link; those who go on submit phone, identity, region and a photo."""
    async def one(person: Person) -> None:
        path = links[person.external_userid]
        _ok(await wire.http.get(path), "opening a verification form")
        if not person.submits:
            return
        data = {"phone": person.phone, "identity_type": person.identity_type,
                "region": person.region}
        # Each member's own shop photo (the form takes JPEG, PNG or WebP by their bytes).
        photo = shop_front_png(person.number)
        files = [("photos", ("shop.png", photo, "image/png"))]
        _ok(await wire.http.post(path, data=data, files=files), "submitting a form")
    await each(one, [p for p in people if p.opens_form])


def _ok(answer: httpx.Response, what: str) -> None:
    if answer.status_code != 200:
        raise DemoError(f"{what}: HTTP {answer.status_code}")


async def review(wire: Wire, people: list[Person], texts: DemoTexts,
                 leave_some: bool = True) -> Counter[str]:
    """Reviewers work through the queue the directory did not settle, oldest first; with
    `leave_some` (the last day) the newest tenth is left for whoever opens the console's
    review page after the demo."""
    by_id = {p.external_userid: p for p in people}
    queue = await _pending_reviews(wire)
    left = math.ceil(len(queue) * LEFT_FOR_THE_CONSOLE) if leave_some else 0
    decided: Counter[str] = Counter(left=left)
    for row in queue[:len(queue) - left]:
        person = by_id[row["external_userid"]]
        body = {"reviewer": person.reviewer}
        if person.approved_by_reviewer:
            await wire.api("POST", f"/api/reviews/{row['id']}/approve", json=body)
        else:
            body["reason"] = texts.reason(person.reject_reason)
            await wire.api("POST", f"/api/reviews/{row['id']}/reject", json=body)
        decided["approved" if person.approved_by_reviewer else "rejected"] += 1
    return decided


SECOND_ACCOUNT = "wmDemoSecond0"


async def claim_a_linked_phone(wire: Wire, people: list[Person]) -> int | None:
    """A second WeChat account of someone already verified adds the bot and submits the same
    phone with a 64×64 red square: it must wait for a reviewer, flagged with the member who
    holds the phone (never approved by the directory). The holder's member id, or None."""
    async with wire.db.reader() as session:
        holder = (await session.execute(select(Member.id, Member.external_userid).where(
            Member.link_state == LINKED).order_by(Member.id).limit(1))).first()
    if holder is None:
        return None
    original = next(p for p in people if p.external_userid == holder.external_userid)
    second = replace(original, external_userid=SECOND_ACCOUNT, opens_form=True, submits=True)
    path = (await welcome_links(wire, await add_friends(wire, [second])))[SECOND_ACCOUNT]
    await wire.quiet()  # recorded as a member (the welcome goes out before that)
    data = {"phone": second.phone, "identity_type": second.identity_type,
            "region": second.region}
    files = [("photos", ("shop.png", square_png(64), "image/png"))]
    _ok(await wire.http.post(path, data=data, files=files), "a second account's form")
    return int(holder.id)


async def _pending_reviews(wire: Wire) -> list[dict[str, Any]]:
    queue: list[dict[str, Any]] = []
    while page := await wire.api("GET", "/api/reviews", params={
            "status": "pending", "after_id": queue[-1]["id"] if queue else 0, "limit": 500}):
        queue.extend(page)
    return queue


async def scan_codes(wire: Wire, people: list[Person], links: dict[str, str]) -> int:
    """Routed members open their status page and scan the group code it shows (one after
    another, so the service can rotate a pool as its groups fill, as it would in life)."""
    routed = {p.external_userid for p in people} & await _routed(wire)
    pools = await _pools(wire)
    joined = 0
    for person in (p for p in people if p.external_userid in routed and p.joins):
        page = (await wire.http.get(links[person.external_userid])).text
        config_id = next((c for qr, c in pools.items() if qr in page), None)
        if config_id is None:
            raise DemoError(f"no group code on the status page of {person.external_userid}")
        await wire.scenario("group_join", config_id=config_id,
                            external_userid=person.external_userid)
        joined += 1
    await wire.quiet()
    return joined


async def _routed(wire: Wire) -> set[str]:
    async with wire.db.reader() as session:
        return set(await session.scalars(select(Member.external_userid).where(
            Member.status == ROUTED)))


async def _pools(wire: Wire) -> dict[str, str]:
    """Each pool's QR code → its join way (what scanning that code means to WeCom)."""
    async with wire.db.reader() as session:
        return {qr: config_id for qr, config_id in await session.execute(
            select(GroupPool.qr_code, GroupPool.config_id))}


ASKING = 4  # one member in this many asks 微信客服 a question


async def ask_kf(wire: Wire, people: list[Person], questions: tuple[str, ...],
                 open_kfid: str, before: int = 0) -> int:
    """Members ask 微信客服 what shop owners ask; the service answers by keywords.yaml or keeps
    the question for the console's keyword page (`before` were asked earlier). How many
    asked."""
    asking = people[::ASKING] if questions else []

    async def one(pair: tuple[int, Person]) -> None:
        n, person = pair
        text = questions[(before + n) % len(questions)]
        await wire.scenario("kf_message", open_kfid=open_kfid, text=text,
                            external_userid=person.external_userid)
    await each(one, list(enumerate(asking)))
    await wait_for(lambda: _answered(wire, before + len(asking)),
                   "every question answered or kept")
    return len(asking)


async def _answered(wire: Wire, asked: int) -> bool:
    async with wire.db.reader() as session:
        hits = await session.scalar(select(func.count()).select_from(KeywordHit))
        kept = await session.scalar(select(func.count()).select_from(UnansweredQuestion))
    return (hits or 0) + (kept or 0) >= asked


async def announce(wire: Wire, operator: str, segment: str,
                   text: str) -> tuple[str, str] | None:
    """An operator asks the bot to announce to a segment after its groups' one mass message of
    the day is planned: the bot holds it and offers the choices; the operator puts it into
    tomorrow's message. (the status it was held with, the status it ends with), or None."""
    await wire.scenario("app_text", from_user=operator, content=f"/announce {segment} {text}")
    await wire.quiet()
    async with wire.db.reader() as session:
        held = (await session.execute(select(Announcement.id, Announcement.status)
                                      .order_by(Announcement.id.desc()).limit(1))).first()
    if held is None:
        return None
    if held.status == HELD:
        await wire.scenario("app_text", from_user=operator,
                            content=f"/announce tomorrow {held.id}")
        await wire.quiet()
    async with wire.db.reader() as session:
        final = await session.scalar(select(Announcement.status).where(
            Announcement.id == held.id))
    return str(held.status), str(final)
