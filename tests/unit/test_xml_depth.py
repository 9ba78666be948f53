"""parse_xml refuses documents nested deeper than WeCom ever sends, with XmlError (a 400 at the
callback), never with a RecursionError (a 500 and a huge traceback in the log)."""

from __future__ import annotations

import pytest

from app.engine.wecom.parsing import event_from_xml
from app.engine.wecom.xmlutil import MAX_DEPTH, XmlError, parse_xml
from tests.fakes import payloads


def nested(depth: int, inner: str = "x", *, closed: bool = True) -> str:
    """<xml> holding a chain of <a> elements, `depth` elements deep in all (<xml> counts)."""
    chain = depth - 1
    return "<xml>" + "<a>" * chain + inner + ("</a>" * chain + "</xml>" if closed else "")


def test_wecom_shapes_still_parse() -> None:
    envelope = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt>abc</Encrypt></xml>"
    assert parse_xml(envelope) == {"ToUserName": "ww1", "Encrypt": "abc"}
    members = "<xml><MemChangeList><Item>wm1</Item><Item>wm2</Item></MemChangeList></xml>"
    assert parse_xml(members) == {"MemChangeList": ["wm1", "wm2"]}
    # WeCom's deepest event (a picture menu click) is five levels deep.
    pics = ("<xml><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>m5</PicMd5Sum></item>"
            "</PicList></SendPicsInfo></xml>")
    assert parse_xml(pics) == {"SendPicsInfo": {"Count": "1", "PicList": {"item": {
        "PicMd5Sum": "m5"}}}}
    assert event_from_xml(payloads.external_contact()).kind == "external_contact.add"


def test_the_limit_is_exact() -> None:
    fields = parse_xml(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 2):
        fields = fields["a"]
    assert fields == {"a": "x"}
    with pytest.raises(XmlError, match=f"deeper than {MAX_DEPTH}"):
        parse_xml(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("depth", [500, 5_000, 100_000, 1_000_000])
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_deep_documents_are_xml_errors(depth: int, as_bytes: bool) -> None:
    # 500 levels was enough for a RecursionError; a million checks that expat and freeing the
    # tree cope too (a depth the callback's body limit would never let through).
    document = nested(depth)
    with pytest.raises(XmlError, match="deeper than"):
        parse_xml(document.encode() if as_bytes else document)


def test_deep_and_unclosed_is_refused_on_depth() -> None:
    with pytest.raises(XmlError, match="deeper than"):
        parse_xml(nested(100_000, "", closed=False))


def test_depth_hidden_after_ordinary_fields_is_refused() -> None:
    payload = payloads.external_contact().replace("</xml>", nested(5_000)[5:])
    with pytest.raises(XmlError, match="deeper than"):
        event_from_xml(payload)


def test_wide_documents_are_not_deep() -> None:
    # The limit is on nesting, not size: many siblings (bounded by the body limit) still parse.
    items = "".join(f"<Item>wm{i}</Item>" for i in range(10_000))
    fields = parse_xml(f"<xml><MemChangeList>{items}</MemChangeList></xml>")
    assert len(fields["MemChangeList"]) == 10_000
