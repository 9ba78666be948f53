"""The demo's synthetic population: who comes through which channel and ad slot, who they are,
and where each of them drops out of the funnel. Pure and seeded: the same seed and size give
the same people and the same fates, so two runs count the same funnel.

`size` is the number of people who add a staff member. The app's ad slots see many more: for
each app-channel member the app's upper funnel is drawn user by user (targeted → impression →
click → landing → add) until one of them adds, so the upper steps have realistic drop-off.
The rates below are what an operator of such a community would see, roughly; they only need
to be plausible and to leave every step with someone in it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.funnel import steps
from app.funnel.flows import FunnelFlows

# Where friend adds come from (channels not listed get a small share).
CHANNEL_WEIGHTS = {"app": 48, "douyin": 20, "door_to_door": 14, "app_store": 10, "organic": 8}
OTHER_CHANNEL_WEIGHT = 3
# App ad slots: (share of the users targeted, click rate once seen). Pop-ups are seen most
# and clicked least; a slot after an order converts best.
SLOTS = {"home_popup": (26, 0.09), "home_banner": (22, 0.12), "category_top": (11, 0.14),
         "product_detail": (14, 0.20), "order_success": (12, 0.26), "my_page": (8, 0.16),
         "message_center": (7, 0.18)}
OTHER_SLOT = (5, 0.12)
SEEN, LANDED, ADDED = 0.70, 0.82, 0.40  # impression, landing view, app → WeChat (the worst)
# Identity types by channel: door-to-door reaches shops, Douyin brings consumers too.
IDENTITIES = {
    "door_to_door": {"physical_shop": 82, "wechat_reseller": 7, "online_shop": 6, "consumer": 5},
    "douyin": {"physical_shop": 18, "wechat_reseller": 28, "online_shop": 34, "consumer": 20},
    "": {"physical_shop": 45, "wechat_reseller": 20, "online_shop": 22, "consumer": 13},
}
REGIONS = {"广东": 18, "浙江": 13, "江苏": 10, "福建": 7, "山东": 7, "河南": 6, "河北": 5,
           "湖北": 5, "四川": 5, "湖南": 4, "北京": 4, "上海": 4, "安徽": 3, "辽宁": 3, "陕西": 2,
           "广西": 2, "江西": 2}
# Registered platform users (their phone is in the directory): nearly every app user, fewer
# of those who come from outside the app.
IN_DIRECTORY = {"app": 0.9, "app_store": 0.6}
IN_DIRECTORY_OTHERS = 0.3
NO_STATE = 0.5  # default-channel adds that found the staff member without a code
OPENS_FORM, SUBMITS = 0.80, 0.78
APPROVED_BY_REVIEWER = 0.80  # the rest have photos a reviewer rejects
JOINS = 0.86  # routed members who scan their group's code
LEAVES = 0.05  # joined members who leave their group during the simulated days
REVIEWERS = ("op_wang", "op_li")
PHONE_PREFIXES = ("135", "136", "138", "139", "150", "151", "158", "177", "186", "188")


@dataclass(frozen=True)
class AppUser:
    """A user the app targeted, and the last app step they reached (adds are Persons)."""

    platform_user_id: str
    channel: str
    slot: str
    reached: tuple[str, ...]
    person: int  # the number of the person it was drawn for (the app users around them)


@dataclass(frozen=True)
class Person:
    """Someone who adds a staff member, and what they will do next."""

    number: int  # their place in the population (their photo and the day they arrive)
    external_userid: str
    channel: str
    slot: str | None
    state: str  # the 联系我 code's state they add through ("" without a code)
    staff: str
    platform_user_id: str
    identity_type: str
    region: str
    phone: str
    in_directory: bool
    opens_form: bool
    submits: bool
    approved_by_reviewer: bool
    reviewer: str
    reject_reason: int  # index into the demo's reasons
    joins: bool
    leaves_at: float | None  # fraction of the simulated days, None: stays


@dataclass
class Population:
    people: list[Person] = field(default_factory=list)
    app_users: list[AppUser] = field(default_factory=list)  # everyone the app targeted

    def cohort(self, number: int, of: int) -> Population:
        """The people who arrive on day `number` of `of` (0-based), with the app users drawn
        around them."""
        return Population(
            [p for p in self.people if p.number % of == number],
            [u for u in self.app_users if u.person % of == number])


def generate(size: int, seed: int, funnel: FunnelFlows, regions: list[str]) -> Population:
    """`size` people who add a staff member, with the app users the app targeted around them."""
    rng = random.Random(seed)
    population = Population()
    phones: set[str] = set()
    known_regions = {r: w for r, w in REGIONS.items() if r in regions} or dict.fromkeys(regions, 1)
    for n in range(size):
        channel = _pick(rng, {c: CHANNEL_WEIGHTS.get(c, OTHER_CHANNEL_WEIGHT)
                              for c in funnel.channels})
        slots = funnel.channels[channel].slots
        user = _app_journey(rng, n, channel, slots, population.app_users) if slots else None
        population.people.append(_person(rng, n, channel, funnel, user, known_regions, phones))
    return population


def _app_journey(rng: random.Random, n: int, channel: str, slots: Iterable[str],
                 users: list[AppUser]) -> AppUser:
    """Targeted users, one after another, until one adds on WeChat: that one is returned."""
    shares = {s: SLOTS.get(s, OTHER_SLOT)[0] for s in slots}
    while True:
        slot = _pick(rng, shares)
        reached = [steps.TARGETED]
        for step, rate in ((steps.IMPRESSION, SEEN), (steps.CLICK, SLOTS.get(slot, OTHER_SLOT)[1]),
                           (steps.LANDING, LANDED), (steps.FRIEND_ADDED, ADDED)):
            if rng.random() >= rate:
                break
            reached.append(step)
        user = AppUser(f"u{n:05d}{len(users):06d}", channel, slot,
                       tuple(s for s in reached if s != steps.FRIEND_ADDED), n)
        users.append(user)
        if reached[-1] == steps.FRIEND_ADDED:
            return user


def _person(rng: random.Random, n: int, channel: str, funnel: FunnelFlows, user: AppUser | None,
            regions: dict[str, int], phones: set[str]) -> Person:
    identity = _pick(rng, IDENTITIES.get(channel, IDENTITIES[""]))
    state = f"{channel}.{user.slot}" if user else channel
    if channel == funnel.default_channel and rng.random() < NO_STATE:
        state = ""
    opens = rng.random() < OPENS_FORM
    joins = rng.random() < JOINS
    return Person(
        number=n, external_userid=f"wmDemo{n:05d}", channel=channel,
        slot=user.slot if user else None, state=state,
        staff=rng.choice(funnel.channels[channel].staff),
        platform_user_id=user.platform_user_id if user else f"p{n:05d}",
        identity_type=identity, region=_pick(rng, regions), phone=_phone(rng, phones),
        in_directory=rng.random() < IN_DIRECTORY.get(channel, IN_DIRECTORY_OTHERS),
        opens_form=opens, submits=opens and rng.random() < SUBMITS,
        approved_by_reviewer=rng.random() < APPROVED_BY_REVIEWER,
        reviewer=rng.choice(REVIEWERS), reject_reason=rng.randrange(1000),
        joins=joins, leaves_at=rng.random() if joins and rng.random() < LEAVES else None)


def _phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    names = sorted(weights)  # a stable order, whatever order the YAML declared them in
    return rng.choices(names, weights=[weights[n] for n in names])[0]
