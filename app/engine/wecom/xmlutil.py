"""Safe parsing of WeCom's flat XML documents (the callback envelope and the decrypted payload).

WeCom XML is one `<xml>` root with leaf children (CDATA or plain text) and, in a few events, a
container of repeated `<Item>` children (`MemChangeList`). The body comes from the internet, so it
is parsed with defusedxml, which refuses DTDs, entity expansion and external references, and
under a depth limit: a deeply nested body is refused the moment one element opens too deep, so
no deep tree is ever built, walked or freed.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

XmlValue = str | list[str] | dict[str, Any]

# Deepest element accepted, <xml> being depth 1. WeCom's envelope stops at 2 and the payloads we
# handle at 3 (<xml><MemChangeList><Item>); its deepest events (e.g. SendPicsInfo/PicList/item/
# PicMd5Sum) reach 5. Beyond a few spare levels a body is an attack, not an event: refusing it
# keeps the parse cheap and `_value`'s recursion short.
MAX_DEPTH = 8


class XmlError(ValueError):
    """The document is not well-formed, is forbidden (DTD, entities) or is not WeCom's shape."""


def parse_xml(data: bytes | str) -> dict[str, XmlValue]:
    """Parse `<xml>…</xml>` into a dict of child tag → text, list of item texts, or nested dict."""
    parser = SafeET.XMLParser(target=_DepthLimit(), forbid_dtd=True)
    try:
        parser.feed(data)
        root = parser.close()
    except XmlError:
        raise  # the depth limit's own reason (XmlError is a ValueError, caught below otherwise)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise XmlError(f"not well-formed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise XmlError(f"root element is <{root.tag}>, expected <xml>")
    return _children(root)


class _DepthLimit:
    """The parser's tree builder, refusing an element nested deeper than MAX_DEPTH as it opens."""

    def __init__(self) -> None:
        self._tree = TreeBuilder()
        self._depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise XmlError(f"nested deeper than {MAX_DEPTH} elements")
        return self._tree.start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return self._tree.end(tag)

    def data(self, text: str) -> None:
        self._tree.data(text)

    def close(self) -> Element:
        return self._tree.close()


def _children(element: Element) -> dict[str, XmlValue]:
    fields: dict[str, XmlValue] = {}
    for child in element:
        fields[child.tag] = _value(child)
    return fields


def _value(element: Element) -> XmlValue:
    kids = list(element)
    if not kids:
        return element.text or ""
    # A container of repeated <Item> elements (e.g. MemChangeList) becomes a list of texts.
    if all(kid.tag == "Item" and not list(kid) for kid in kids):
        return [kid.text or "" for kid in kids]
    return _children(element)


def build_xml(fields: dict[str, str | int | list[str]]) -> str:
    """Serialise a flat dict the way WeCom does: strings in CDATA, ints bare, lists as <Item>s."""
    parts = ["<xml>"]
    for tag, value in fields.items():
        parts.append(f"<{tag}>{_render(value)}</{tag}>")
    parts.append("</xml>")
    return "".join(parts)


def _render(value: str | int | list[str]) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans have no WeCom XML form")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "".join(f"<Item>{_cdata(item)}</Item>" for item in value)
    return _cdata(value)


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside CDATA; fall back to escaped text for such values.
    if "]]>" in text:
        return escape(text)
    return f"<![CDATA[{text}]]>"
