"""`sopbot codes sync`: one 联系我 code per declared (channel, slot), created once, updated only
when its declaration changed, a WeCom error on one code reported without stopping the others."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import app.engine.wecom.wiring
from app.engine.db import Database
from app.engine.wecom.client import WeComClient
from app.faces.cli.main import cli
from app.flows import load_flows
from app.funnel import codes
from app.funnel.flows import FunnelFlows
from app.funnel.models import ContactCode
from tests.conftest import AES_KEY, CORP_ID, REPO, TOKEN
from tests.fakes.wecom import Call, FakeWeCom, error

ADD = "externalcontact/add_contact_way"
UPDATE = "externalcontact/update_contact_way"
GET = "externalcontact/get_contact_way"
DEL = "externalcontact/del_contact_way"
STATES = ["organic", "door_to_door", "douyin", "app_store", "app.home_banner", "app.home_popup",
          "app.category_top", "app.product_detail", "app.order_success", "app.my_page",
          "app.message_center"]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom()


@pytest.fixture
def wecom(fake: FakeWeCom) -> WeComClient:
    return fake.wecom_client()


def declared() -> FunnelFlows:
    return load_flows(REPO / "sop_flows").funnel


def with_staff(funnel: FunnelFlows, channel: str, staff: tuple[str, ...]) -> FunnelFlows:
    channels = dict(funnel.channels)
    channels[channel] = channels[channel].model_copy(update={"staff": staff})
    return funnel.model_copy(update={"channels": channels})


def without(funnel: FunnelFlows, channel: str) -> FunnelFlows:
    channels = {name: c for name, c in funnel.channels.items() if name != channel}
    return funnel.model_copy(update={"channels": channels})


def failing_for(fake: FakeWeCom, path: str, state: str, errcode: int) -> None:
    """Make `path` fail with `errcode` for one state's code; others get the fake's answer."""
    original: Callable[[Call], Any] = fake.routes[path]

    def route(call: Call) -> Any:
        if call.body.get("state") == state:
            return error(errcode, "scripted failure")
        return original(call)
    fake.routes[path] = route


async def rows(db: Database) -> dict[str, ContactCode]:
    async with db.reader() as session:
        return {row.state: row for row in await session.scalars(select(ContactCode))}


async def test_first_sync_creates_eleven_codes_and_stores_them(
        db: Database, fake: FakeWeCom, wecom: WeComClient) -> None:
    results = await codes.sync_codes(db, wecom, declared())
    assert [(r.outcome, r.state) for r in results] == [("created", s) for s in STATES]
    adds = {call.body["state"]: call.body for call in fake.calls_to(ADD)}
    assert list(adds) == STATES
    assert adds["douyin"]["type"] == 1 and adds["douyin"]["user"] == ["lisi"]
    assert adds["app.my_page"]["type"] == 2 and adds["app.my_page"]["user"] == ["zhangsan", "lisi"]
    assert all(body["scene"] == 2 and body["state"] in body["remark"] for body in adds.values())
    stored = await rows(db)
    assert set(stored) == set(STATES)
    for state, row in stored.items():
        config = fake.contact_ways[row.config_id]  # the config WeCom holds for this row
        assert config["state"] == state
        assert row.qr_code == config["qr_code"]
        assert results[STATES.index(state)].qr_code == row.qr_code
    assert stored["app.my_page"].channel == "app" and stored["app.my_page"].slot == "my_page"
    assert stored["organic"].slot is None


async def test_second_sync_changes_nothing(db: Database, fake: FakeWeCom,
                                           wecom: WeComClient) -> None:
    await codes.sync_codes(db, wecom, declared())
    before = {state: (row.config_id, row.qr_code) for state, row in (await rows(db)).items()}
    results = await codes.sync_codes(db, wecom, declared())
    assert [r.outcome for r in results] == ["unchanged"] * 11
    assert len(fake.calls_to(ADD)) == 11 and not fake.calls_to(UPDATE)
    after = {state: (row.config_id, row.qr_code) for state, row in (await rows(db)).items()}
    assert after == before


async def test_staff_change_updates_only_that_code(db: Database, fake: FakeWeCom,
                                                   wecom: WeComClient) -> None:
    await codes.sync_codes(db, wecom, declared())
    old = (await rows(db))["douyin"]
    results = await codes.sync_codes(db, wecom, with_staff(declared(), "douyin", ("wangwu",)))
    outcomes = {r.state: r.outcome for r in results}
    assert outcomes.pop("douyin") == "updated"
    assert set(outcomes.values()) == {"unchanged"}
    (update,) = fake.calls_to(UPDATE)
    assert update.body["config_id"] == old.config_id and update.body["user"] == ["wangwu"]
    assert fake.contact_ways[old.config_id]["user"] == ["wangwu"]
    new = (await rows(db))["douyin"]
    assert (new.config_id, new.qr_code) == (old.config_id, old.qr_code)
    assert new.fingerprint != old.fingerprint
    # The new declaration is now the stored one: a third sync does nothing.
    again = await codes.sync_codes(db, wecom, with_staff(declared(), "douyin", ("wangwu",)))
    assert {r.outcome for r in again} == {"unchanged"}


async def test_change_between_one_and_several_staff_is_refused(
        db: Database, fake: FakeWeCom, wecom: WeComClient) -> None:
    await codes.sync_codes(db, wecom, declared())
    results = await codes.sync_codes(db, wecom, with_staff(declared(), "douyin", ("a", "b")))
    (failed,) = [r for r in results if r.outcome == "failed"]
    assert failed.state == "douyin" and "one and several" in failed.error
    assert not fake.calls_to(UPDATE)


async def test_wecom_error_on_one_code_is_reported_and_the_rest_synced(
        db: Database, fake: FakeWeCom, wecom: WeComClient) -> None:
    original = fake.routes[ADD]
    failing_for(fake, ADD, "douyin", 41041)
    results = await codes.sync_codes(db, wecom, declared())
    by_state = {r.state: r for r in results}
    assert by_state["douyin"].outcome == "failed"
    assert "41041" in by_state["douyin"].error and "add_contact_way" in by_state["douyin"].error
    assert by_state["douyin"].line().startswith("failed    douyin: ")
    assert {r.outcome for s, r in by_state.items() if s != "douyin"} == {"created"}
    assert set(await rows(db)) == set(STATES) - {"douyin"}
    # Once WeCom accepts it, the next sync creates only the missing code.
    fake.routes[ADD] = original
    retry = await codes.sync_codes(db, wecom, declared())
    assert [r.state for r in retry if r.outcome == "created"] == ["douyin"]


async def test_add_answer_without_qr_code_is_completed_by_get(
        db: Database, fake: FakeWeCom, wecom: WeComClient) -> None:
    original = fake.routes[ADD]
    fake.routes[ADD] = lambda call: {"config_id": original(call)["config_id"]}
    await codes.sync_codes(db, wecom, declared())
    assert len(fake.calls_to(GET)) == 11
    stored = await rows(db)
    assert all(row.qr_code == fake.contact_ways[row.config_id]["qr_code"]
               for row in stored.values())


async def test_undeclared_codes_are_listed_stale_and_deleted_on_request(
        db: Database, fake: FakeWeCom, wecom: WeComClient) -> None:
    await codes.sync_codes(db, wecom, declared())
    gone = (await rows(db))["app_store"]
    results = await codes.sync_codes(db, wecom, without(declared(), "app_store"))
    assert [(r.outcome, r.state) for r in results if r.outcome != "unchanged"] == [
        ("stale", "app_store")]
    assert "--delete-stale" in results[-1].line()
    assert not fake.calls_to(DEL) and "app_store" in await rows(db)
    results = await codes.sync_codes(db, wecom, without(declared(), "app_store"),
                                     delete_stale=True)
    assert [(r.outcome, r.state) for r in results if r.outcome != "unchanged"] == [
        ("deleted", "app_store")]
    assert fake.last(DEL).body == {"config_id": gone.config_id}
    assert gone.config_id not in fake.contact_ways
    assert "app_store" not in await rows(db)


# --- the command --------------------------------------------------------------------------------


def env_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "test.env"
    path.write_text("\n".join([
        f"SOPBOT_DATABASE_URL={db_url}", f"WECOM_CORP_ID={CORP_ID}",
        f"WECOM_CALLBACK_TOKEN={TOKEN}", f"WECOM_CALLBACK_AES_KEY={AES_KEY}",
        "WECOM_AGENT_SECRET=agent-secret", "SOPBOT_SECRET_KEY=test-secret-key-0123456789",
        f"SOPBOT_FLOWS={REPO / 'sop_flows'}", f"SOPBOT_KEYWORDS={REPO / 'keywords.yaml'}"]) + "\n")
    return path


@pytest.fixture
def cli_fake(monkeypatch: pytest.MonkeyPatch) -> FakeWeCom:
    """The command's WeCom client talks to a fake (the command builds it with build_wecom)."""
    fake, build = FakeWeCom(), app.engine.wecom.wiring.build_wecom
    monkeypatch.setattr(app.engine.wecom.wiring, "build_wecom",
                        lambda settings, db, transport=None: build(settings, db, fake.transport))
    for name in ("SOPBOT_DATABASE_URL", "WECOM_AGENT_SECRET", "WECOM_CONTACT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return fake


def test_command_prints_a_line_per_code_and_exits_1_on_a_failure(
        db_url: str, tmp_path: Path, cli_fake: FakeWeCom) -> None:
    failing_for(cli_fake, ADD, "app.my_page", 41045)
    result = CliRunner().invoke(cli, ["codes", "sync", "--env-file", str(env_file(tmp_path,
                                                                                  db_url))])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 11
    assert lines[0].startswith("created   organic https://")
    assert [line for line in lines if line.startswith("failed")] == [
        "failed    app.my_page: externalcontact/add_contact_way: errcode 41045: "
        "scripted failure"]
    assert "1 code(s) failed" in result.stderr

    listed = CliRunner().invoke(cli, ["codes", "list", "--env-file",
                                      str(env_file(tmp_path, db_url))])
    assert listed.exit_code == 0
    assert len(listed.stdout.splitlines()) == 10
    assert "app.my_page" not in listed.stdout and "app.home_banner" in listed.stdout


def test_command_all_unchanged_exits_0(db_url: str, tmp_path: Path,
                                       cli_fake: FakeWeCom) -> None:
    args = ["codes", "sync", "--env-file", str(env_file(tmp_path, db_url))]
    assert CliRunner().invoke(cli, args).exit_code == 0
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0
    assert [line.split()[0] for line in second.stdout.splitlines()] == ["unchanged"] * 11


def test_command_deletes_stale_codes_only_when_asked(db_url: str, tmp_path: Path,
                                                      cli_fake: FakeWeCom) -> None:
    env = env_file(tmp_path, db_url)
    assert CliRunner().invoke(cli, ["codes", "sync", "--env-file", str(env)]).exit_code == 0
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "sop_flows", flows)
    funnel_yaml = flows / "funnel.yaml"
    declaration = "  app_store:\n    label: 应用商店\n    staff: [zhangsan]\n"
    text = funnel_yaml.read_text(encoding="utf-8")
    assert declaration in text
    funnel_yaml.write_text(text.replace(declaration, ""), encoding="utf-8")
    env.write_text(env.read_text() + f"SOPBOT_FLOWS={flows}\n")
    listed = CliRunner().invoke(cli, ["codes", "sync", "--env-file", str(env)])
    assert listed.exit_code == 0
    (stale,) = [line for line in listed.stdout.splitlines() if not line.startswith("unchanged")]
    assert stale.startswith("stale     app_store https://") and "--delete-stale" in stale
    assert not cli_fake.calls_to(DEL)
    deleted = CliRunner().invoke(cli, ["codes", "sync", "--delete-stale", "--env-file", str(env)])
    assert deleted.exit_code == 0
    assert [line.split()[:2] for line in deleted.stdout.splitlines()
            if not line.startswith("unchanged")] == [["deleted", "app_store"]]
    assert len(cli_fake.calls_to(DEL)) == 1


def test_command_without_a_contact_secret_says_so(db_url: str, tmp_path: Path,
                                                  cli_fake: FakeWeCom) -> None:
    env = env_file(tmp_path, db_url)
    env.write_text(env.read_text().replace("WECOM_AGENT_SECRET=agent-secret\n", ""))
    result = CliRunner().invoke(cli, ["codes", "sync", "--env-file", str(env)])
    assert result.exit_code == 2
    assert result.stderr == ("sopbot: codes sync needs WECOM_CONTACT_SECRET (or "
                             "WECOM_AGENT_SECRET) to call WeCom\n")
    assert not cli_fake.calls
