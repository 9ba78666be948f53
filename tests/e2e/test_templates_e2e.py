"""`sopbot templates sync` against the simulator: one group welcome template per segment,
created once, edited when its declaration changes, deleted when no longer declared; a bad
declaration is refused with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.db import Database
from app.engine.wecom.wiring import build_wecom
from app.engine.yamlconf import ConfigFileError
from app.flows import load_flows
from app.groups.templates import sync_templates
from tests.conftest import REPO, make_settings
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, running_sim


def flows_dir(tmp_path: Path) -> Path:
    target = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", target)
    return target


async def test_templates_are_created_edited_and_deleted_as_declared(db_url: str,
                                                                    tmp_path: Path) -> None:
    flows_path = flows_dir(tmp_path)
    async with running_sim() as sim:
        settings = make_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                                 callback_aes_key=AES_KEY, agent_secret=SECRET,
                                 api_base=sim.base_url, flows_path=flows_path)
        db = Database(db_url)
        http, wecom, _ = build_wecom(settings, db)
        try:
            first = await sync_templates(db, wecom, load_flows(flows_path))
            assert [line.split()[:2] for line in first] == [
                ["created", s] for s in ("shop_north", "shop_south", "reseller", "online",
                                         "online_douyin")]
            held = sim.sim.world.welcome_templates
            online = next(t for t in held.values() if "网店群" in t["text"]["content"])
            assert online["text"]["content"].startswith("欢迎 %NICKNAME% 加入「网店群」！")
            assert online["link"]["title"] == "网店卖家入门手册"
            assert [line.split()[0] for line in await sync_templates(
                db, wecom, load_flows(flows_path))] == ["unchanged"] * 5
            # Reseller's rules change; online_douyin is no longer declared.
            path = flows_path / "group_welcome.yaml"
            text = path.read_text(encoding="utf-8")
            text = text.replace("被采纳的文案奖励样品", "被采纳的文案奖励进货券")
            text = text[:text.index("  online_douyin:")]
            path.write_text(text, encoding="utf-8")
            third = await sync_templates(db, wecom, load_flows(flows_path))
            assert [line.split()[:2] for line in third] == [
                ["unchanged", "shop_north"], ["unchanged", "shop_south"], ["edited", "reseller"],
                ["unchanged", "online"], ["deleted", "online_douyin"]]
            assert len(held) == 4
            assert any("奖励进货券" in t["text"]["content"] for t in held.values())
            # Someone deletes the reseller template in the admin console; the next change
            # makes it again instead of failing for ever.
            gone = next(k for k, t in held.items() if "文案奖励进货券" in t["text"]["content"])
            del held[gone]
            path.write_text(text.replace("文案奖励进货券", "文案奖励样品"), encoding="utf-8")
            fourth = await sync_templates(db, wecom, load_flows(flows_path))
            assert fourth[2].split()[:2] == ["created", "reseller"]
            assert len(held) == 4
        finally:
            await http.aclose()
            await db.dispose()


@pytest.mark.parametrize(("change", "message"), [
    (("欢迎 %NICKNAME% 加入", "欢迎加入"), "put %NICKNAME% where"),
    (("  reseller:\n", "  resellers:\n"), "templates.resellers: unknown segment"),
    (("{intro}", "{introduction}"), "unknown placeholder {introduction}"),
])
def test_bad_template_declarations_are_refused(tmp_path: Path, change: tuple[str, str],
                                              message: str) -> None:
    flows_path = flows_dir(tmp_path)
    path = flows_path / "group_welcome.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(*change), encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows_path)
    assert message in info.value.message
    assert info.value.path == path and info.value.line is not None
