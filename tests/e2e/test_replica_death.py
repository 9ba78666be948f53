"""A replica killed for real (SIGKILL) in the middle of a burst of friend adds, while its
welcomes are on the wire to a slow WeCom: every welcome is delivered once, within its window,
and recorded as what it was; the survivor takes over the dead replica's claims and the
scheduler's lead within seconds. The scenario is bench/replica_death.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.replica_death import run
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="SOPBOT_TEST_PG_URL not set: replicas need "
                                                   "PostgreSQL")


async def test_a_killed_replica_costs_no_welcome(tmp_path: Path) -> None:
    report = await run(PG_URL, tmp_path, adds=60, welcome_delay_s=0.5)
    assert report.on_the_wire_at_kill > 0, "the kill came with no welcome on the wire"
    assert report.delivered == 60
    assert (report.lost, report.duplicated, report.late, report.misrecorded) == ([], [], [], [])
    assert report.statuses == {"sent": 60}
    assert max(report.takeover_s, default=0.0) < 10  # the lease alone: 72 s
    assert report.leadership_s is not None and report.leadership_s < 10  # was 60 s
