"""What the calendar posts where, and through which transport, on a given day: the same plan
for `sopbot calendar preview`, `/calendar` and (next) the scheduler that posts it.

A customer group gets a mass-send task its owner confirms (one task per owner for all their
groups of the segment) and at most one a day, so the day's posts go through the segment's
`daily_cap_policy`; an internal group (robot or appchat) gets every post, at its own time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from app.calendar.flows import WEEK, CalendarFlows, SegmentCalendar
from app.calendar.posts import Post, at_time
from app.calendar.talks import TalkFlows, talk_posts

MASS_TASK, OWNER_REMINDER, ROBOT, APPCHAT = "mass_task", "owner_reminder", "robot", "appchat"
MONDAY = 0
GREETINGS = {"morning": "早安", "evening": "晚安"}


@dataclass(frozen=True)
class Delivery:
    """One thing sent: a mass task to an owner for their groups, a reminder to an owner, or a
    post to an internal group."""

    at: datetime
    transport: str
    target: str  # owner userid, robot name or appchat chatid
    segment: str
    posts: tuple[Post, ...]
    chat_ids: tuple[str, ...] = field(default=())
    label: str = ""  # a group with a post of its own today (onboarding): its chat id
    customers: tuple[str, ...] = ()  # a talk's personal invitation: the joiners it invites


def posts_for(segment: SegmentCalendar, day: date) -> list[Post]:
    posts = []
    weekly = segment.weekly if day.weekday() == MONDAY else None
    for name, greeting in (("morning", segment.morning), ("evening", segment.evening)):
        if greeting is not None:
            posts.append(Post(at_time(day, greeting.time), name, greeting.priority,
                              text=greeting.text, extra=weekly if name == "morning" else None))
    for n, slot in enumerate(segment.slots):
        if not slot.runs_on(day):
            continue
        posts.append(Post(at_time(day, slot.time), f"slot{n}", slot.priority, column=slot.column,
                          template=slot.template))
    posts = sorted(posts, key=lambda p: (p.at, p.name))
    if weekly and segment.morning is None and posts:  # no morning greeting to carry it
        posts[0] = replace(posts[0], extra=weekly)
    return posts


def day_posts(calendar: CalendarFlows, segment: str, day: date,
              talks: TalkFlows | None) -> list[Post]:
    """The segment's posts of `day`: its calendar's and its talks', in time order."""
    posts = posts_for(calendar.segments.get(segment) or SegmentCalendar(), day)
    if talks is not None:
        posts = sorted([*posts, *talk_posts(talks, segment, day)], key=lambda p: (p.at, p.name))
    return posts


def plan_day(calendar: CalendarFlows, segment: str, day: date,
             groups_by_owner: dict[str, list[str]],
             own_posts: dict[str, Post] | None = None,
             talks: TalkFlows | None = None) -> list[Delivery]:
    """Every delivery for the segment on `day`, in time order: the calendar's posts and its
    talks' (planned together under the one daily cap). A group with a post of its own that
    day (`own_posts`: its onboarding action) gets its own task with that post added, so it
    still receives one mass message."""
    own_posts = own_posts or {}
    posts = day_posts(calendar, segment, day, talks)
    shared = {owner: [c for c in chats if c not in own_posts]
              for owner, chats in groups_by_owner.items()}
    deliveries = _customer(calendar, segment, posts, {o: c for o, c in shared.items() if c})
    for owner, chats in sorted(groups_by_owner.items()):
        for chat in (c for c in chats if c in own_posts):
            alone = sorted([*posts, own_posts[chat]], key=lambda p: (p.at, p.name))
            deliveries += [replace(d, label=chat)
                           for d in _customer(calendar, segment, alone, {owner: [chat]})]
    deliveries = _one_reminder_per_post(deliveries)
    if segment not in calendar.segments:
        return sorted(deliveries, key=lambda d: (d.at, d.transport, d.target, d.label))
    for name, target in sorted(calendar.internal.items()):
        if segment in target.segments:
            address = target.robot if target.transport == ROBOT else target.chatid
            deliveries += [Delivery(p.at, target.transport, address or name, segment, (p,))
                           for p in posts]
    return sorted(deliveries, key=lambda d: (d.at, d.transport, d.target, d.label))


def _one_reminder_per_post(deliveries: list[Delivery]) -> list[Delivery]:
    """An owner's reminders of one post (the same post at the same time: their shared groups'
    and each of their groups with a task of its own) as one app message naming all the groups,
    not one per group. It keeps the shared reminder's key (its label ""), else the first
    group's."""
    merged: dict[tuple[str, tuple[Post, ...]], Delivery] = {}
    others = []
    for delivery in deliveries:
        if delivery.transport != OWNER_REMINDER:
            others.append(delivery)
            continue
        same = (delivery.target, delivery.posts)
        if (first := merged.get(same)) is None:
            merged[same] = delivery
            continue
        chats = tuple(dict.fromkeys((*first.chat_ids, *delivery.chat_ids)))
        merged[same] = replace(first, chat_ids=chats,
                               label=first.label and delivery.label and first.label)
    return [*others, *merged.values()]


def mass_post(posts: list[Post]) -> Post:
    """The post a day's one mass task carries when the policy keeps one: the highest
    priority, the earliest of equals (`posts` in time order)."""
    return max(posts, key=lambda p: (p.priority, -posts.index(p)))


def _customer(calendar: CalendarFlows, segment: str, posts: list[Post],
              groups_by_owner: dict[str, list[str]]) -> list[Delivery]:
    if not posts:
        return []
    best = mass_post(posts)
    carried = next((p.extra for p in posts if p.extra), None)
    if carried and calendar.daily_cap_policy != "merge" and not best.extra:
        # The weekly calendar goes with the one task (and the task's post is not reminded too).
        posts = [replace(p, extra=carried if p is best else None) for p in posts]
        best = mass_post(posts)
    policy = calendar.daily_cap_policy
    deliveries = []
    for owner, chat_ids in sorted(groups_by_owner.items()):
        chats = tuple(chat_ids)
        if policy == "merge":
            deliveries.append(Delivery(posts[0].at, MASS_TASK, owner, segment, tuple(posts),
                                       chats))
            continue
        deliveries.append(Delivery(best.at, MASS_TASK, owner, segment, (best,), chats))
        if policy == "remind_owner":
            deliveries += [Delivery(p.at, OWNER_REMINDER, owner, segment, (p,), chats)
                           for p in posts if p is not best]
    return deliveries


def describe_policy(calendar: CalendarFlows, segment: str, day: date,
                    talks: TalkFlows | None = None) -> str:
    """What the calendar's daily_cap_policy does with the segment's posts of `day` (its
    talks' included), post by post, and what the other policies would do (`sopbot check`)."""
    posts = day_posts(calendar, segment, day, talks)
    best, policy = mass_post(posts), calendar.daily_cap_policy
    others = [p for p in posts if p is not best]
    declared = calendar.segments.get(segment)
    weekly = " (with Monday's weekly calendar)" if declared and declared.weekly else ""
    said = {
        "merge": f"{_and(calendar, posts)} together in one task at {posts[0].at:%H:%M}",
        "highest_priority": f"only {_named(calendar, best)} as the mass task, "
                            f"{_and(calendar, others)} not sent",
        "remind_owner": f"{_named(calendar, best)} as the mass task{weekly}, "
                        f"{_and(calendar, others)} as owner reminder"
                        + ("s at their times" if len(others) > 1 else " at its time"),
    }
    others_said = "; ".join(f"{name}: {text}" for name, text in said.items() if name != policy)
    return f"policy {policy}: {said[policy]} (other policies: {others_said})"


def _named(calendar: CalendarFlows, post: Post) -> str:
    talk = dict(post.fields).get("talk")
    step = post.name.rpartition(".")[2]
    label = GREETINGS.get(post.name) or (f"{talk} {step}" if talk else None) \
        or calendar.columns.get(post.column or "", post.name)
    return f"{post.at:%H:%M} {label}"


def _and(calendar: CalendarFlows, posts: list[Post]) -> str:
    names = [_named(calendar, p) for p in posts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def render(post: Post, labels: dict[str, str], item: Callable[[Post], dict[str, str] | None],
           default_template: str = "") -> str | None:
    """The post's text: a greeting as written, a slot from its column's next item (None when
    the column is empty: the slot is skipped and reported), a talk's from its template."""
    if post.text is not None:
        text: str = post.text
    else:
        values = dict(post.fields)
        if post.column is not None:
            found = item(post)
            if found is None:
                return None
            values |= {**found, "topic": found["title"], "details": found["body"]}
        template = post.template or default_template
        text = template.format(column=labels.get(post.column or "", post.column), **values)
        text = text.strip()
    return f"{text}\n\n{post.extra}" if post.extra else text


def cap_report(calendar: CalendarFlows, talks: TalkFlows | None = None) -> list[str]:
    """Per segment whose day asks for more than WeCom's one mass message per customer group
    (its calendar's posts and its talks'): what its policy does with each post, and what the
    other policies would do."""
    talked = [s for talk in (talks.talks.values() if talks else ()) for s in talk.segments]
    lines = []
    for name in dict.fromkeys([*calendar.segments, *talked]):
        counts = {day: len(day_posts(calendar, name, day, talks)) for day in WEEK}
        busiest = max(WEEK, key=counts.__getitem__)
        count = counts[busiest]
        if count > 1:
            varies = set(counts.values()) != {count}
            many = f"up to {count} posts a day (e.g. {busiest:%A})" if varies \
                else f"{count} posts a day"
            lines.append(f"{name}: {many}, WeCom allows one mass message per customer group; "
                         + describe_policy(calendar, name, busiest, talks))
    return lines
