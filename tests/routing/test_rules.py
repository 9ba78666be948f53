"""sop_flows/routing.yaml: the most specific rule wins; overlapping rules, an identity type
without a default, a segment of another identity type and unknown names are load errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.yamlconf import ConfigFileError
from app.flows import load_flows
from app.routing.flows import RoutingFlows
from tests.conftest import REPO, config_error

ROUTING = load_flows(REPO / "sop_flows").routing

BASE = """\
segments:
  shops: {label: 实体店, identity_type: physical_shop, ideal_size: 100, room_name: 实体店群}
  shops_bj: {label: 北京实体店, identity_type: physical_shop, ideal_size: 100, room_name: 北京群}
  resellers: {label: 微商, identity_type: wechat_reseller, ideal_size: 100, room_name: 微商群}
  online: {label: 网店, identity_type: online_shop, ideal_size: 100, room_name: 网店群}
rules:
  - {identity_type: physical_shop, segment: shops}
  - {identity_type: physical_shop, regions: [北京], segment: shops_bj}
  - {identity_type: wechat_reseller, segment: resellers}
  - {identity_type: online_shop, segment: online}
texts:
  staff_routed: "请邀请 {external_userid} 加入 {segment}"
  no_group: 暂无群
"""


def error_of(tmp_path: Path, text: str) -> ConfigFileError:
    return config_error(tmp_path / "routing.yaml", text, RoutingFlows)


@pytest.mark.parametrize(("identity", "channel", "region", "segment"), [
    ("physical_shop", "app", "北京", "shop_north"),
    ("physical_shop", "douyin", "广东", "shop_south"),
    ("physical_shop", "app", None, "shop_south"),  # no region yet: the default
    ("online_shop", "douyin", "北京", "online_douyin"),
    ("online_shop", "app", "北京", "online"),
    ("wechat_reseller", "douyin", "上海", "reseller"),
    ("consumer", "app", "北京", None),  # never routed
])
def test_the_most_specific_rule_wins(identity: str, channel: str, region: str | None,
                                     segment: str | None) -> None:
    assert ROUTING.segment_for(identity, channel, region) == segment


def test_a_member_is_only_routed_within_its_identity_type() -> None:
    for identity in ("physical_shop", "wechat_reseller", "online_shop"):
        for channel in ("app", "douyin", "organic"):
            for region in ("北京", "广东", None):
                segment = ROUTING.segment_for(identity, channel, region)
                assert segment is not None
                assert ROUTING.segments[segment].identity_type == identity


@pytest.mark.parametrize(("change", "line", "message"), [
    (("  - {identity_type: wechat_reseller, segment: resellers}\n", ""), 7,
     "no default rule (without channels and regions) for identity_type wechat_reseller"),
    (("regions: [北京], segment: shops_bj}", "segment: shops_bj}"), 8,
     "rules.1: overlaps rules.0 (both match physical_shop from any channel in any region)"),
    (("  - {identity_type: online_shop, segment: online}\n",
      "  - {identity_type: online_shop, segment: online}\n"
      "  - {identity_type: online_shop, regions: [北京, 上海], segment: online}\n"
      "  - {identity_type: online_shop, regions: [上海], segment: online}\n"), 12,
     "rules.5: overlaps rules.4 (both match online_shop from any channel in 上海)"),
    (("{identity_type: wechat_reseller, segment: resellers}",
      "{identity_type: wechat_reseller, segment: shops}"), 9,
     "rules.2: segment 'shops' is for physical_shop, not wechat_reseller"),
    (("{identity_type: online_shop, segment: online}",
      "{identity_type: consumer, segment: online}"), 10, "rules.3: identity_type 'consumer'"),
    (("identity_type: physical_shop, ideal_size", "identity_type: consumer, ideal_size"), 2,
     "identity_type 'consumer': one of physical_shop"),
    (("{external_userid}", "{phone_full}"), 12, "unknown placeholder {phone_full}"),
])
def test_declaration_errors(tmp_path: Path, change: tuple[str, str], line: int,
                            message: str) -> None:
    error = error_of(tmp_path, BASE.replace(*change))
    assert message in error.message
    assert error.line == line


def test_a_channel_finer_than_a_region_rule_overlaps_it(tmp_path: Path) -> None:
    # Same specificity, both could match a member from douyin in 北京: ambiguous.
    text = BASE.replace("  - {identity_type: wechat_reseller, segment: resellers}\n",
                        "  - {identity_type: wechat_reseller, segment: resellers}\n"
                        "  - {identity_type: physical_shop, channels: [douyin], segment: shops}\n")
    assert "overlaps rules.1" in error_of(tmp_path, text).message


@pytest.mark.parametrize(("change", "message"), [
    ("channels: [douyin]", "rules.4: unknown channel 'tiktok' (sop_flows/funnel.yaml)"),
    ("regions: [北京, 天津", "rules.1: unknown region '火星' (sop_flows/verify.yaml)"),
])
def test_rules_name_only_declared_channels_and_regions(tmp_path: Path, change: str,
                                                       message: str) -> None:
    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    routing = flows / "routing.yaml"
    bad = change.replace("douyin", "tiktok").replace("北京", "火星")
    routing.write_text(routing.read_text(encoding="utf-8").replace(change, bad), encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_flows(flows)
    assert str(info.value).endswith(message)
