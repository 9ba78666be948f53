"""Phone normalisation, photo sniffing and sop_flows/verify.yaml validation (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.yamlconf import ConfigFileError
from app.flows import load_flows
from app.verify.phone import normalise_phone
from app.verify.photos import image_type
from tests.conftest import REPO
from tests.verify.conftest import JPEG, PNG, WEBP


@pytest.mark.parametrize(("typed", "normal"), [
    ("13800138000", "13800138000"), ("+86 138 0013 8000", "13800138000"),
    ("+86-138-0013-8000", "13800138000"), ("8613800138000", "13800138000"),
    ("0086 19912345678", "19912345678"), ("（138）0013.8000", "13800138000"),
])
def test_mainland_mobiles_are_normalised(typed: str, normal: str) -> None:
    assert normalise_phone(typed) == normal


@pytest.mark.parametrize("typed", ["", "12800138000", "1380013800", "138001380001",
                                   "+85213800138000", "+1 415 555 0100", "1380013800a",
                                   "86138001380"])
def test_other_numbers_are_refused(typed: str) -> None:
    assert normalise_phone(typed) is None


def test_image_types_come_from_magic_bytes() -> None:
    assert [image_type(d[:12]) for d in (JPEG, PNG, WEBP)] == ["jpg", "png", "webp"]
    assert image_type(b"GIF89a......") is None
    assert image_type(b"RIFF\x00\x00\x00\x00WAVE") is None


def test_repository_verify_flows_are_valid() -> None:
    verify = load_flows(REPO / "sop_flows").verify
    assert set(verify.identity_types) == {"physical_shop", "wechat_reseller", "online_shop",
                                          "consumer"}
    assert "广东" in verify.regions
    assert "consumer" not in verify.auto_approve.directory_match


def _flows_with(tmp_path: Path, old: str, new: str) -> Path:
    for name in ("commands.yaml", "funnel.yaml", "verify.yaml"):
        text = (REPO / "sop_flows" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(old, new) if name == "verify.yaml" else text,
                                     encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("directory_match: [physical_shop,", "directory_match: [consumer,",
     "'consumer' cannot be auto-approved"),
    ("  consumer: 消费者\n", "", "identity_types must label exactly"),
    ("原因：{reason}", "原因：{why}", "unknown placeholder {why}"),
    ("regions: [北京,", "regions: [北京, 北京,", "a region is listed twice"),
    ("  - 照片与所选身份不符\n", "  - 照片与所选身份不符\n  - 照片与所选身份不符\n",
     "a review reason is listed twice"),
])
def test_bad_verify_flows_name_file_and_line(tmp_path: Path, old: str, new: str,
                                             message: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_flows(_flows_with(tmp_path, old, new))
    assert info.value.path == tmp_path / "verify.yaml"
    assert info.value.line is not None
    assert message in str(info.value)
