"""GET /metrics: callbacks by kind and outcome, sends by result and errcode, the welcome
latency histogram, inbox and outbox depths and the funnel's steps, in Prometheus' format."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CORP_ID, make_settings, serve_app, wait_until
from tests.fakes import payloads


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_what_happened(db_url: str) -> None:
    async with serve_app(make_settings(db_url, agent_secret="agent-secret")) as app:
        add = payloads.external_contact(corp_id=CORP_ID, external_user_id="wmMetric",
                                        welcome_code="WC-M1", state="douyin")
        for _ in range(2):  # stored, then WeCom's retry
            assert (await app.post_callback(add)).status_code == 200
        forged = await app.client.post("/wecom/callback", params={
            "msg_signature": "x", "timestamp": str(int(time.time())), "nonce": "n"},
            content=b"<xml/>")
        assert forged.status_code == 400

        async def welcomed() -> bool:
            text = (await app.client.get("/metrics")).text
            return samples(text).get(("sopbot_welcome_latency_seconds_count", ()), 0) == 1
        await wait_until(welcomed, 10)
        await app.idle()
        answer = await app.client.get("/metrics")
        assert answer.headers["content-type"].startswith("text/plain")
        found = samples(answer.text)
        kind = (("kind", "external_contact.add"),)
        assert found[("sopbot_callbacks_total", kind + (("outcome", "stored"),))] == 1
        assert found[("sopbot_callbacks_total", kind + (("outcome", "duplicate"),))] == 1
        assert found[("sopbot_callbacks_total", (("kind", "-"), ("outcome", "rejected_400")))] \
            == 1
        assert found[("sopbot_sends_total", (("api", "externalcontact/send_welcome_msg"),
                                              ("errcode", "0"), ("result", "sent")))] == 1
        # The welcome was sent: nothing of it waits, so no outbox depth is reported for it.
        assert not any(name == "sopbot_outbox_depth" for name, _ in found)
        assert found[("sopbot_funnel_steps", (("step", "friend_added"),))] == 1
        assert found[("sopbot_inbox_pending", ())] == 0
