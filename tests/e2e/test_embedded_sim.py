"""`sopbot serve` without WeCom credentials: the built-in simulator, mounted in the app, takes
WeCom's place end to end (callbacks in, API calls out)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app import migrate
from app.engine.inbox.models import InboxEvent
from app.engine.outbox import store
from app.engine.outbox.models import FAST
from app.engine.wecom.api import SendMessage, Text
from app.faces.sim.access import KEY_HEADER
from app.faces.sim.config import SimSettings
from app.faces.sim.embedded import (
    MOUNT_PATH,
    CredentialsRequired,
    ExposedSimulator,
    check_host,
    embedded_simulator,
)
from app.faces.web.main import create_app
from bench._sopbot import free_port
from tests.conftest import OPERATOR, make_settings, rows_of, wait_until
from tests.e2e.sim_server import serve


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The embedded SQLite database: the only one the built-in simulator runs on."""
    url = f"sqlite:///{tmp_path / 'sopbot.db'}"
    migrate.upgrade(url)
    return url


def test_only_without_credentials(db_url: str) -> None:
    bare = make_settings(db_url, port=8123, robots="ops=k1")
    pointed, sim = embedded_simulator(bare)  # type: ignore[misc]
    assert pointed.api_base == f"http://127.0.0.1:8123{MOUNT_PATH}"
    assert pointed.agent_secret == sim.agent_secret
    assert sim.bot_url == "http://127.0.0.1:8123/wecom/callback"
    assert (sim.corp_id, sim.callback_token, sim.robots) == (bare.corp_id, bare.callback_token,
                                                            ("k1",))
    # Every staff member sop_flows/funnel.yaml names exists in it (codes sync needs them).
    assert {"zhangsan", "lisi", "staff01"} <= set(sim.members)
    for secret in ("agent_secret", "contact_secret_raw", "kf_secret_raw"):
        assert embedded_simulator(make_settings(db_url, **{secret: SecretStr("real")})) is None
    assert embedded_simulator(make_settings(db_url, api_base="http://127.0.0.1:9")) is None


def test_never_on_postgresql_where_a_missing_secret_stops_the_service() -> None:
    deployed = make_settings("postgresql+psycopg://sopbot@db:5432/sopbot")
    with pytest.raises(CredentialsRequired, match="WECOM_AGENT_SECRET"):
        embedded_simulator(deployed)


async def test_the_built_in_simulator_answers_callbacks_and_api_calls(db_url: str) -> None:
    port = free_port()
    settings, sim_settings = embedded_simulator(make_settings(db_url, port=port))  # type: ignore[misc]
    app = create_app(settings, simulator=sim_settings)
    key = {KEY_HEADER: sim_settings.control_key.get_secret_value()}
    async with serve(app, port=port) as base_url, httpx.AsyncClient(base_url=base_url,
                                                                    headers=key) as http:
        sim = f"{MOUNT_PATH}/sim"
        answer = (await http.post(f"{sim}/scenarios/app_text",
                                  json={"from_user": OPERATOR, "content": "/help"})).json()
        assert answer["callbacks"][0]["outcome"] == "delivered"
        assert "/help" in answer["reply"]  # the service's encrypted passive reply, decrypted
        runtime = app.state.runtime
        async with runtime.db.unit_of_work() as session:
            await store.enqueue(session, "test:hello", SendMessage(
                agentid=settings.agent_id or 0, touser=OPERATOR, msgtype="text",
                text=Text(content="你好，运营")), kind="test", priority=FAST)

        async def delivered() -> bool:
            calls = (await http.get(f"{sim}/requests", params={"path": "message/send"})).json()
            return any(call["errcode"] == 0 for call in calls["requests"])

        await wait_until(delivered, 10)
        calls = (await http.get(f"{sim}/requests", params={"path": "message/send"})).json()
        assert [c["body"]["text"]["content"] for c in calls["requests"]] == ["你好，运营"]


async def test_its_control_paths_answer_only_with_its_key(db_url: str) -> None:
    """Without the key nobody lists what the bot sent (members' links), reads the world, or
    makes an operator's command happen: 401, and nothing reaches the service."""
    port = free_port()
    settings, sim_settings = embedded_simulator(make_settings(db_url, port=port))  # type: ignore[misc]
    assert sim_settings.control_key is not None
    app = create_app(settings, simulator=sim_settings)
    command = {"from_user": OPERATOR, "content": "/review approve 1"}
    async with serve(app, port=port) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        sim = f"{MOUNT_PATH}/sim"
        for wrong in ({}, {KEY_HEADER: ""}, {KEY_HEADER: "not-the-key-0123456789"}):
            assert (await http.get(f"{sim}/requests", headers=wrong)).status_code == 401
            assert (await http.get(f"{sim}/state", headers=wrong)).status_code == 401
            assert (await http.post(f"{sim}/clock", json={"advance_s": 60},
                                    headers=wrong)).status_code == 401
            refused = await http.post(f"{sim}/scenarios/raw_callback", headers=wrong,
                                      json={"plaintext": "<xml/>"})
            assert refused.status_code == 401
            assert (await http.post(f"{sim}/scenarios/app_text", json=command,
                                    headers=wrong)).status_code == 401
        key = {KEY_HEADER: sim_settings.control_key.get_secret_value()}
        assert (await http.get(f"{sim}/callbacks", headers=key)).json() == {"callbacks": []}
        assert await rows_of(app.state.runtime.db, InboxEvent) == []
        assert (await http.get(f"{sim}/state", headers=key)).status_code == 200


async def test_its_wecom_api_answers_only_this_machine(db_url: str) -> None:
    """The service it is built into calls it on loopback; nobody else may."""
    settings, sim_settings = embedded_simulator(make_settings(db_url))  # type: ignore[misc]
    app = create_app(settings, simulator=sim_settings)
    query = {"corpid": settings.corp_id, "corpsecret": sim_settings.agent_secret.get_secret_value()}
    path = f"{MOUNT_PATH}/cgi-bin/gettoken"
    for client, status in ((("203.0.113.7", 5555), 404), (("127.0.0.1", 5555), 200),
                           (("::1", 5555), 200)):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://sopbot") as http:
            assert (await http.get(path, params=query)).status_code == status, client
    # A proxy on this machine makes every stranger loopback: what it forwarded is refused.
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://sopbot") as http:
        for header in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"},
                       {"X-Real-IP": "203.0.113.7"}):
            assert (await http.get(path, params=query, headers=header)).status_code == 404


def test_its_secrets_are_its_own_not_the_published_defaults(db_url: str) -> None:
    _, sim = embedded_simulator(make_settings(db_url))  # type: ignore[misc]
    _, again = embedded_simulator(make_settings(db_url))  # type: ignore[misc]
    assert sim.agent_secret.get_secret_value() not in ("sim-agent-secret",
                                                       again.agent_secret.get_secret_value())
    assert sim.robots != SimSettings.model_fields["robots"].default and sim.robots != again.robots


async def test_a_stranger_gets_401_before_any_body_is_read(db_url: str) -> None:
    settings, sim_settings = embedded_simulator(make_settings(db_url))  # type: ignore[misc]
    transport = httpx.ASGITransport(app=create_app(settings, simulator=sim_settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://sopbot") as http:
        answer = await http.post(f"{MOUNT_PATH}/sim/faults", content=b"{not json SECRETISH",
                                 headers={"Content-Type": "application/json"})
    assert answer.status_code == 401 and "SECRETISH" not in answer.text


def test_a_non_loopback_host_needs_the_operators_opt_in(db_url: str) -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_host(make_settings(db_url, host=host))
    for host in ("0.0.0.0", "::", "192.0.2.10", "sopbot.example.com"):
        with pytest.raises(ExposedSimulator, match="SOPBOT_SIM_ALLOW_REMOTE"):
            check_host(make_settings(db_url, host=host))
        check_host(make_settings(db_url, host=host, sim_allow_remote=True))
