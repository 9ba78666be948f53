"""The demo's week of group talk (app/faces/demo/group_talk.py): planned over groups that fill
day by day in a simulated world, posted into the simulator's archive (which checks who is in
which group since when), and read back for the story the archive pages need."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest

from app.calendar.posts import at_time
from app.engine.config import SHANGHAI
from app.faces.demo.group_talk import (
    DAY_CLOSES,
    DAY_OPENS,
    QUIET_DAYS,
    UNANSWERED_SILENCE_S,
    Post,
    Story,
    TalkGroup,
)
from app.faces.demo.texts import load_texts
from app.faces.sim import archive, groups
from app.faces.sim.clock import ManualClock
from app.faces.sim.config import SimSettings
from app.faces.sim.state import World

DAYS = 7
FIRST = date(2025, 3, 3)
OWNERS = ("zhangsan", "lisi")
# The defaults of sop_flows/group_rules.yaml's questions.ask_words.
ASK_WORDS = ("？", "?", "吗", "怎么", "多少", "有没有", "能不能", "哪里", "什么时候", "如何")
ANSWER_WITHIN_S = 30 * 60
TALK = load_texts().group_talk


def play(seed: int = 1) -> tuple[Story, list[Post], World]:
    """Seven days: 30 newcomers join eight groups each morning at 09:31; each evening the day's
    talk is planned from the world's groups and posted into its archive."""
    world = World(SimSettings(_env_file=None),
                  ManualClock(at_time(FIRST, "09:00").timestamp()))
    chats = [groups.group_create(world, OWNERS[n % 2]).chat_id for n in range(8)]
    story, rng, posts = Story(TALK, {}, DAYS, seed), random.Random(seed), []
    for n in range(DAYS):
        day = FIRST + timedelta(days=n)
        world.clock.set(at_time(day, "09:31").timestamp())
        for i in range(30):
            groups.group_join(world, [f"wm{n}{i:02d}"], rng.choice(chats[:5] if n < 2 else chats))
        world.clock.set(at_time(day, "22:30").timestamp())
        planned = story.day(n + 1, day, [TalkGroup.from_sim(g) for g in groups.live_groups(world)])
        for post in planned:  # the simulator refuses a sender not in the group, or not yet
            record = archive.post_text(world, post.chat_id, post.sender, post.text,
                                       post.at.timestamp())
            if post.recall_by is not None:
                archive.recall(world, record.msgid, post.recall_by,
                               post.at.timestamp() + post.recall_after_s)
        posts += planned
    return story, posts, world


@pytest.fixture(scope="module")
def week() -> tuple[Story, list[Post], World]:
    return play()


def by_group(posts: list[Post]) -> dict[str, list[Post]]:
    grouped: dict[str, list[Post]] = defaultdict(list)
    for post in sorted(posts, key=lambda p: p.at):
        grouped[post.chat_id].append(post)
    return grouped


def test_talk_happens_in_the_day_after_joining(week: tuple[Story, list[Post], World]) -> None:
    _, posts, world = week
    joined = {(g.chat_id, m.userid): m.join_time for g in world.groups.values()
              for m in g.members.values()}
    for post in posts:
        day = post.at.astimezone(SHANGHAI).date()
        assert at_time(day, DAY_OPENS) <= post.at <= at_time(day, DAY_CLOSES)
        assert post.at.timestamp() > joined[post.chat_id, post.sender]
    assert len(world.archive) == len(posts) + 2  # and the two recalls


def test_newcomers_introduce_themselves_first_or_never(
        week: tuple[Story, list[Post], World]) -> None:
    _, posts, world = week
    first: dict[str, Post] = {}
    for post in sorted(posts, key=lambda p: p.at):
        first.setdefault(post.sender, post)
    customers = {m.userid: m.join_time for g in world.groups.values()
                 for m in g.members.values() if m.type == 2}
    spoke = [c for c in customers if c in first]
    assert all(first[c].kind == "intro" for c in spoke)
    assert all(first[c].at.timestamp() - customers[c] < 2 * 86400 for c in spoke)
    # Some who joined on the first days never did (the newcomer list has names on it).
    early = [c for c, t in customers.items() if t < at_time(FIRST + timedelta(days=3),
                                                            "00:00").timestamp()]
    silent = [c for c in early if c not in first]
    assert 0 < len(silent) < len(early) / 2
    assert all(not any(w in p.text for w in ASK_WORDS) and len(p.text) >= 6
               for p in posts if p.kind == "intro")


def test_questions_answered_within_minutes_or_not_at_all(
        week: tuple[Story, list[Post], World]) -> None:
    _, posts, _ = week
    kinds: Counter[str] = Counter()
    for chat in by_group(posts).values():
        for post, after in zip(chat, [*chat[1:], None], strict=True):
            if post.kind not in ("question", "open_question"):
                continue
            assert any(w in post.text for w in ASK_WORDS) and len(post.text) >= 4
            kinds[post.kind] += 1
            gap = (after.at - post.at).total_seconds() if after else 10**9
            if post.kind == "question":  # the next line is the answer, from someone else
                assert after is not None and after.kind == "answer"
                assert after.sender != post.sender and gap <= ANSWER_WITHIN_S
            else:
                assert gap >= UNANSWERED_SILENCE_S
    assert kinds["question"] > kinds["open_question"] > 10
    # The same few open questions come up again and again (hot questions rank by frequency).
    repeats = Counter(p.text for p in posts if p.kind == "open_question")
    assert repeats.most_common(1)[0][1] >= 5
    others = [p for p in posts if p.kind not in ("question", "open_question")]
    assert not [p.text for p in others if any(w in p.text for w in ASK_WORDS)]


def test_one_member_answers_others_a_lot(week: tuple[Story, list[Post], World]) -> None:
    story, posts, _ = week
    answers = Counter(p.sender for p in posts if p.kind == "answer" and p.sender.startswith("wm"))
    [(koc, most), (_, next_most)] = answers.most_common(2)
    assert koc == story.koc and most >= 2 * next_most and most >= 8


def test_the_spammer_posts_links_phones_and_a_wechat_id_in_a_burst(
        week: tuple[Story, list[Post], World]) -> None:
    story, posts, world = week
    spam = [p for p in posts if p.kind == "spam"]
    assert {p.sender for p in spam} == {story.spammer}
    texts = " ".join(p.text for p in spam)
    assert re.search(r"https?://", texts) and re.search(r"1[3-9]\d{9}", texts)
    assert "加微信" in texts and ("淘宝" in texts or "douyin" in texts)
    times = sorted(p.at for p in spam)
    assert any((b - a).total_seconds() <= 60 for a, b in zip(times, times[4:], strict=False))
    # The owner recalled one of them; the spammer introduced themselves before it all.
    recalls = [r.message for r in world.archive if r.message and r.message["action"] == "recall"]
    spam_ids = {r.msgid for r in world.archive if r.message and r.message["from"] == story.spammer}
    owners = {g.owner for g in world.groups.values()}
    assert any(r["revoke"]["pre_msgid"] in spam_ids and r["from"] in owners for r in recalls)
    # And a member recalled their own typo within the two minutes WeCom allows.
    assert any(r["revoke"]["pre_msgid"] not in spam_ids and r["from"] not in owners
               for r in recalls)


def test_a_group_goes_quiet_for_the_last_days(week: tuple[Story, list[Post], World]) -> None:
    story, posts, _ = week
    assert story.quiet is not None and story.quiet_since == DAYS - QUIET_DAYS + 1
    days = {p.at.astimezone(SHANGHAI).date() for p in posts if p.chat_id == story.quiet}
    quiet_from = FIRST + timedelta(days=story.quiet_since - 1)
    assert days and max(days) < quiet_from
    assert {p.chat_id for p in posts if p.at >= datetime.combine(
        quiet_from, datetime.min.time(), SHANGHAI)} - {story.quiet}


def test_the_same_seed_tells_the_same_story(week: tuple[Story, list[Post], World]) -> None:
    _, posts, _ = week
    again = play()[1]
    assert [(p.chat_id, p.sender, p.text, p.at) for p in again] == [
        (p.chat_id, p.sender, p.text, p.at) for p in posts]


def test_only_the_questions_of_the_texts_ask() -> None:
    """A line that asked would be counted as a question by the service."""
    asking = [TALK.open_questions, [pair.q for pair in TALK.questions]]
    telling = [*TALK.intros.values(), [pair.a for pair in TALK.questions], TALK.chatter,
               TALK.staff_morning, TALK.staff_welcome, TALK.spam, TALK.flood,
               [TALK.staff_warning, TALK.typo.wrong, TALK.typo.right]]
    assert all(any(w in line for w in ASK_WORDS) for lines in asking for line in lines)
    assert not [line for lines in telling for line in lines if any(w in line for w in ASK_WORDS)]
