"""The week's talk in the customer groups, as WeCom's chat archive records it. Each evening the
day's messages are planned from who is in which group (the simulator's groups, with when each
member joined) and posted through the simulator's group_messages scenario (one msgaudit_notify
a day, as WeCom would send a few), so every page that reads the archive has something to show:

- newcomers introduce themselves on the day they join or the next; one in five never does;
- questions answered within minutes (by the group's owner, by another member, and most often
  by one member who answers a lot: the KOC candidate) and questions nobody answers (nobody else
  speaks in that group for the next 40 minutes), the same few of those in several groups;
- a member who turns ad spammer the day after introducing themselves: links to other
  platforms, a phone number, a WeChat id, a burst of lines within a minute; the owner recalls
  one of their posts and warns them;
- a member who recalls a typo within a minute and posts it again;
- one group that goes quiet for the last three days.

The plan is pure and seeded (the same groups and seed give the same talk), like population.py;
the texts are demo.yaml's `group_talk`."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.calendar.posts import at_time
from app.engine.config import SHANGHAI
from app.faces.demo.population import Person
from app.faces.demo.texts import GroupTalk

DAY_OPENS, DAY_CLOSES = "10:00", "21:45"  # talk between these; posted after (TALK_AT)
GAP_S = (4 * 60, 25 * 60)  # between one exchange and the next in a group
AFTER_JOINING_S = 5 * 60  # nobody speaks in the minutes they are joining
# An unanswered question: nobody else speaks in its group for this long (group_rules'
# answer_within_min is 30 by default).
UNANSWERED_SILENCE_S = 40 * 60
ANSWER_AFTER_S = (2 * 60, 20 * 60)
INTRO_DELAY = {0: 60, 1: 20, None: 20}  # days after joining (weights); None: never
ANSWERED = 0.6
KOC_ANSWERS = 0.75  # of the questions in the KOC's group another member asks
QUESTIONS_PER_TALKERS = 3  # a question a day for every three members who talk (at most 3)
MORNING_NOTICE = 0.5
QUIET_DAYS = 3  # the quiet group's silence at the end of the week
RECALL_OWN_AFTER_S, RECALL_SPAM_AFTER_S = 40, 60
FLOOD_EVERY_S = 10


@dataclass(frozen=True)
class Seat:
    """A customer in a group: since when (epoch seconds)."""

    userid: str
    joined: float


@dataclass(frozen=True)
class TalkGroup:
    chat_id: str
    owner: str
    customers: tuple[Seat, ...]

    @classmethod
    def from_sim(cls, data: dict[str, Any]) -> TalkGroup:
        """One group of the simulator's GET /sim/groups (external members are type 2)."""
        return cls(data["chat_id"], data["owner"], tuple(
            Seat(m["userid"], float(m["join_time"])) for m in data["members"] if m["type"] == 2))


@dataclass(frozen=True)
class Post:
    """One message, and who recalls it how long after (None: nobody)."""

    chat_id: str
    sender: str
    text: str
    at: datetime
    kind: str  # intro | question | answer | open_question | chatter | staff | spam | typo
    recall_by: str | None = None
    recall_after_s: int = 0

    def body(self) -> dict[str, Any]:
        """The post as the simulator's group_messages scenario takes it."""
        return {"chat_id": self.chat_id, "sender": self.sender, "text": self.text,
                "at": self.at.timestamp()}


@dataclass(frozen=True)
class Line:
    offset_s: int  # after the exchange starts
    sender: str
    text: str
    kind: str
    recall_by: str | None = None
    recall_after_s: int = 0


@dataclass
class Exchange:
    """Lines that belong together (a question and its answer), then `silence_s` of nothing in
    the group."""

    lines: list[Line]
    silence_s: int = 0

    def length_s(self) -> int:
        return self.lines[-1].offset_s + self.silence_s


@dataclass
class Story:
    talk: GroupTalk
    people: dict[str, Person]  # by external_userid
    days: int
    seed: int
    introduced: set[str] = field(default_factory=set)
    koc: str | None = None
    spammer: str | None = None
    spam_days: int = 0  # days the spammer has posted on
    quiet: str | None = None  # the group that goes quiet
    quiet_since: int = 0  # from this day (1-based) on
    typo_told: bool = False
    talked: Counter[str] = field(default_factory=Counter)  # messages per group
    tally: Counter[str] = field(default_factory=Counter)  # posts by kind, and recalls
    answers_by: Counter[str] = field(default_factory=Counter)  # answers per member

    def day(self, number: int, day: date, groups: Sequence[TalkGroup]) -> list[Post]:
        """Day `number` (1-based) of the week: its posts, in time order."""
        rng = random.Random(f"group-talk-{self.seed}-{number}")
        live = sorted(groups, key=lambda g: g.chat_id)
        self._quiet_one(number, live)
        live = [g for g in live if g.chat_id != self.quiet]
        intros = {g.chat_id: self._intros_due(g, day) for g in live}
        talkers = {g.chat_id: self._talkers(g, intros[g.chat_id]) for g in live}
        self._cast(live, talkers, rng)
        posts: list[Post] = []
        for group in live:
            exchanges = self._exchanges(group, intros[group.chat_id], talkers[group.chat_id],
                                        number, rng)
            posts += self._place(day, group, exchanges, rng)
        if self.spammer is not None and any(p.kind == "spam" for p in posts):
            self.spam_days += 1
        posts.sort(key=lambda p: p.at)
        self.tally.update(p.kind for p in posts)
        self.tally["recall"] += sum(p.recall_by is not None for p in posts)
        self.answers_by.update(p.sender for p in posts if p.kind == "answer")
        return posts

    # --- who is who ------------------------------------------------------------------------

    def _intro_delay(self, userid: str) -> int | None:
        """Days after joining that `userid` introduces themselves (None: never): their own."""
        rng = random.Random(f"intro-{self.seed}-{userid}")
        choices = list(INTRO_DELAY)
        return rng.choices(choices, weights=[INTRO_DELAY[c] for c in choices])[0]

    def _intros_due(self, group: TalkGroup, day: date) -> list[Seat]:
        due = []
        for seat in group.customers:
            if seat.userid in self.introduced:
                continue
            delay = self._intro_delay(seat.userid)
            joined = datetime.fromtimestamp(seat.joined, SHANGHAI).date()
            if delay is not None and joined + timedelta(days=delay) == day:
                due.append(seat)
        return due

    def _talkers(self, group: TalkGroup, intros: list[Seat]) -> list[str]:
        """Who may speak today besides the owner: members who introduced themselves (today's
        newcomers after their introduction), never the spammer."""
        fresh = {s.userid for s in intros}
        return [s.userid for s in group.customers
                if (s.userid in self.introduced or s.userid in fresh)
                and s.userid != self.spammer]

    def _cast(self, groups: list[TalkGroup], talkers: dict[str, list[str]],
              rng: random.Random) -> None:
        """The KOC candidate (in the group with the most talkers, from three on) and the
        spammer (introduced on an earlier day, in another group with someone to annoy)."""
        if self.koc is None:
            biggest = max(groups, key=lambda g: len(talkers[g.chat_id]), default=None)
            if biggest is not None and len(talkers[biggest.chat_id]) >= 3:
                self.koc = rng.choice(talkers[biggest.chat_id])
        if self.spammer is None:
            koc_groups = {g.chat_id for g in groups if self.koc in talkers[g.chat_id]}
            others = [g for g in groups if g.chat_id not in koc_groups
                      and len([t for t in talkers[g.chat_id] if t in self.introduced]) >= 2]
            if others:
                group = max(others, key=lambda g: len(talkers[g.chat_id]))
                self.spammer = rng.choice([t for t in talkers[group.chat_id]
                                           if t in self.introduced])
                talkers[group.chat_id].remove(self.spammer)

    def _quiet_one(self, number: int, groups: list[TalkGroup]) -> None:
        """From the first of the last QUIET_DAYS days on, the group that talked most so far
        (but not the KOC's or the spammer's) says nothing more."""
        if self.quiet is not None or number < max(2, self.days - QUIET_DAYS + 1):
            return
        cast = {self.koc, self.spammer}
        spoken = [g for g in groups if self.talked[g.chat_id]
                  and not cast & {s.userid for s in g.customers}]
        if spoken:
            self.quiet = max(spoken, key=lambda g: (self.talked[g.chat_id], g.chat_id)).chat_id
            self.quiet_since = number

    # --- what they say ---------------------------------------------------------------------

    def _exchanges(self, group: TalkGroup, intros: list[Seat], talkers: list[str],
                   number: int, rng: random.Random) -> list[Exchange]:
        talk, owner = self.talk, group.owner
        first: list[Exchange] = []
        if rng.random() < MORNING_NOTICE and (talkers or intros):
            first.append(Exchange([Line(0, owner, rng.choice(talk.staff_morning), "staff")]))
        if intros:
            first.append(self._introductions(intros, owner, rng))
        rest: list[Exchange] = []
        asking = len(talkers) // QUESTIONS_PER_TALKERS + rng.randint(0, 1) if talkers else 0
        for _ in range(min(asking, 3)):
            rest.append(self._question(talkers, owner, rng))
        if self.koc in talkers and len(talkers) > 1:  # one more for the KOC to answer
            asker = rng.choice([t for t in talkers if t != self.koc])
            rest.append(self._question(talkers, owner, rng, asker, answered=True))
        for _ in range(rng.randint(0, 2) if talkers else 0):
            rest.append(Exchange([Line(0, rng.choice(talkers), rng.choice(talk.chatter),
                                       "chatter")]))
        spammer = self.spammer
        if spammer is not None and spammer in {s.userid for s in group.customers} \
                and spammer in self.introduced:
            rest.append(self._spam(spammer, owner, rng))
        if not self.typo_told and talkers and number >= min(2, self.days):
            rest.append(self._typo(rng.choice(talkers)))
            self.typo_told = True
        rng.shuffle(rest)
        return first + rest

    def _introductions(self, seats: list[Seat], owner: str, rng: random.Random) -> Exchange:
        lines, offset = [], 0
        for seat in seats:
            person = self.people.get(seat.userid)
            identity, region = (person.identity_type, person.region) if person else ("", "本地")
            text = self.talk.intro(identity, rng.randrange(1000)).format(region=region)
            lines.append(Line(offset, seat.userid, text, "intro"))
            offset += rng.randint(60, 10 * 60)
        lines.append(Line(offset + rng.randint(60, 4 * 60), owner,
                          rng.choice(self.talk.staff_welcome), "staff"))
        return Exchange(lines)

    def _question(self, talkers: list[str], owner: str, rng: random.Random,
                  asker: str | None = None, answered: bool | None = None) -> Exchange:
        asker = asker or rng.choice(talkers)
        if answered is None:
            answered = rng.random() < ANSWERED
        if not answered:
            text = _often_first(rng, self.talk.open_questions)
            return Exchange([Line(0, asker, text, "open_question")], UNANSWERED_SILENCE_S)
        pair = rng.choice(self.talk.questions)
        others = [t for t in talkers if t != asker]
        if self.koc in others and rng.random() < KOC_ANSWERS:
            answerer = self.koc
        elif others and rng.random() < 0.5:
            answerer = rng.choice(others)
        else:
            answerer = owner
        assert answerer is not None
        return Exchange([Line(0, asker, pair.q, "question"),
                         Line(rng.randint(*ANSWER_AFTER_S), answerer, pair.a, "answer")])

    def _spam(self, spammer: str, owner: str, rng: random.Random) -> Exchange:
        """The first day: links (the owner recalls one), then a warning; the second: a burst
        within a minute; later: a phone number or a WeChat id."""
        talk, lines = self.talk, []
        if self.spam_days == 0:
            links = [s for s in talk.spam if "http" in s] or list(talk.spam)
            lines.append(Line(0, spammer, links[0], "spam", owner, RECALL_SPAM_AFTER_S))
            lines.append(Line(3 * 60, spammer, links[1 % len(links)], "spam"))
        elif self.spam_days == 1:
            lines += [Line(n * FLOOD_EVERY_S, spammer, text, "spam")
                      for n, text in enumerate(talk.flood)]
        else:
            plain = [s for s in talk.spam if "http" not in s] or list(talk.spam)
            lines.append(Line(0, spammer, plain[self.spam_days % len(plain)], "spam"))
        lines.append(Line(lines[-1].offset_s + rng.randint(2 * 60, 5 * 60), owner,
                          talk.staff_warning, "staff"))
        return Exchange(lines)

    def _typo(self, member: str) -> Exchange:
        typo = self.talk.typo
        return Exchange([Line(0, member, typo.wrong, "typo", member, RECALL_OWN_AFTER_S),
                         Line(RECALL_OWN_AFTER_S + 30, member, typo.right, "chatter")])

    # --- when ------------------------------------------------------------------------------

    def _place(self, day: date, group: TalkGroup, exchanges: list[Exchange],
               rng: random.Random) -> list[Post]:
        """The exchanges one after another through the day, a pause between them; one that
        would end after DAY_CLOSES is dropped (and its newcomers stay silent)."""
        joined = {s.userid: s.joined for s in group.customers}
        cursor = at_time(day, DAY_OPENS) + timedelta(seconds=rng.randint(*GAP_S))
        closes = at_time(day, DAY_CLOSES)
        posts: list[Post] = []
        for exchange in exchanges:
            ready = max([joined.get(line.sender, 0.0) + AFTER_JOINING_S
                         for line in exchange.lines])
            start = max(cursor, datetime.fromtimestamp(ready, SHANGHAI))
            if start + timedelta(seconds=exchange.length_s()) > closes:
                continue
            for line in exchange.lines:
                posts.append(Post(group.chat_id, line.sender, line.text,
                                  start + timedelta(seconds=line.offset_s), line.kind,
                                  line.recall_by, line.recall_after_s))
                if line.kind == "intro":
                    self.introduced.add(line.sender)
            self.talked[group.chat_id] += len(exchange.lines)
            cursor = start + timedelta(seconds=exchange.length_s() + rng.randint(*GAP_S))
        return posts


def _often_first(rng: random.Random, lines: Sequence[str]) -> str:
    """One of the lines, the first ones more often (hot questions come up again and again)."""
    return rng.choices(list(lines), weights=range(len(lines), 0, -1))[0]
