"""The demo's population: seeded, spread over the declared channels, slots, identity types and
regions, and every app user's steps a prefix of the app's funnel."""

from __future__ import annotations

from collections import Counter

from app.faces.demo.population import generate
from app.flows import load_flows
from app.funnel import steps
from tests.conftest import REPO

FLOWS = load_flows(REPO / "sop_flows")
REGIONS = list(FLOWS.verify.regions)


def test_the_same_seed_gives_the_same_people_and_another_seed_others() -> None:
    first, again = (generate(200, 7, FLOWS.funnel, REGIONS) for _ in range(2))
    assert first == again
    assert generate(200, 8, FLOWS.funnel, REGIONS).people != first.people


def test_people_spread_over_what_the_flows_declare() -> None:
    people = generate(300, 1, FLOWS.funnel, REGIONS).people
    assert {p.channel for p in people} == set(FLOWS.funnel.channels)
    app = FLOWS.funnel.channels["app"]
    assert {p.slot for p in people if p.channel == "app"} == set(app.slots)
    assert {p.identity_type for p in people} == set(FLOWS.verify.identity_types)
    assert {p.region for p in people} <= set(REGIONS) and len({p.region for p in people}) > 10
    assert len({p.phone for p in people}) == len({p.external_userid for p in people}) == 300
    for p in people:  # each adds through a code of their channel, to one of its staff
        assert p.staff in FLOWS.funnel.channels[p.channel].staff
        assert p.state in (f"app.{p.slot}" if p.slot else p.channel, "")


def test_app_users_drop_off_step_by_step_and_each_app_member_is_one_of_them() -> None:
    population = generate(300, 1, FLOWS.funnel, REGIONS)
    reached = Counter(step for user in population.app_users for step in user.reached)
    counts = [reached[s] for s in steps.APP_STEPS]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0] / 5
    for user in population.app_users:
        assert user.reached == steps.APP_STEPS[:len(user.reached)]
    users = {u.platform_user_id: u for u in population.app_users}
    members = [p for p in population.people if p.channel == "app"]
    assert all(users[p.platform_user_id].reached == steps.APP_STEPS for p in members)
    assert all(p.submits <= p.opens_form for p in population.people)
