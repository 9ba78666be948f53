"""A pulled kf message's time: WeCom's send_time, never in the future, now without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.engine.wecom.api_kf import KfMessage
from app.engine.wecom.kf_events import CUSTOMER, KfPulled
from app.engine.wecom.parsing import kf_event

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _text(send_time: int | None) -> KfPulled:
    return kf_event(KfMessage.model_validate({
        "msgid": "m1", "open_kfid": "wk1", "external_userid": "wm1", "origin": CUSTOMER,
        "msgtype": "text", "text": {"content": "hi"}, "send_time": send_time}))


def test_sent_at_is_the_send_time_clamped_to_now() -> None:
    earlier = NOW - timedelta(minutes=40)
    assert _text(int(earlier.timestamp())).sent_at(NOW) == earlier
    later = int((NOW + timedelta(minutes=5)).timestamp())  # a clock ahead of ours
    assert _text(later).sent_at(NOW) == NOW
    assert _text(None).sent_at(NOW) == NOW
