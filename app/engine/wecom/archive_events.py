"""A chat archive message as sopbot reads it, from the JSON that DecryptData (or the simulator)
gives: who said what, where and when, by event time (`msgtime`), never processing time.

WeCom's ids say who a sender is: an external contact's id starts with `wo` or `wm`, a robot's
with `wb`; anything else is a staff userid (wecom-reference §5.15)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STAFF, CUSTOMER, ROBOT = "staff", "customer", "robot"
SEND, RECALL, SWITCH = "send", "recall", "switch"
CUSTOMER_PREFIXES = ("wo", "wm")  # an external contact's id; a robot's starts with wb
MAX_TEXT = 4000  # longer texts are cut: a text message is at most 2,048 characters in WeChat


class MalformedMessage(ValueError):
    """Decrypted JSON that is not an archive message (no msgid, no time)."""


@dataclass(frozen=True)
class ArchiveMessage:
    seq: int
    msgid: str
    action: str  # send | recall | switch
    sender: str
    chat_id: str  # roomid: the customer group's chat_id; "" for one to one
    msgtime: datetime
    msgtype: str
    text: str | None  # text.content of a text message (or a markdown's); None otherwise
    recalled_msgid: str | None = None  # revoke.pre_msgid of a recall

    @property
    def sender_kind(self) -> str:
        return sender_kind(self.sender)

    @property
    def in_group(self) -> bool:
        return bool(self.chat_id)


def sender_kind(userid: str) -> str:
    if userid.startswith("wb"):
        return ROBOT
    if userid.startswith(CUSTOMER_PREFIXES):
        return CUSTOMER
    return STAFF


def parse_message(seq: int, data: Any) -> ArchiveMessage:
    """The typed message of one decrypted record; MalformedMessage when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("msgid"), str) or not data["msgid"]:
        raise MalformedMessage("no msgid")
    action = str(data.get("action") or SEND)
    msgtime = data.get("msgtime", data.get("time"))
    if not isinstance(msgtime, int | float) or isinstance(msgtime, bool):
        raise MalformedMessage(f"message {data['msgid'][:40]}: no msgtime")
    msgtype = str(data.get("msgtype") or (SWITCH if action == SWITCH else ""))
    found = data.get(msgtype)
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    text = body.get("content") if msgtype in ("text", "markdown") else None
    recalled = body.get("pre_msgid") if msgtype == "revoke" else None
    return ArchiveMessage(
        seq=seq, msgid=data["msgid"][:128], action=action, sender=str(data.get("from") or "")[:64],
        chat_id=str(data.get("roomid") or "")[:64],
        msgtime=datetime.fromtimestamp(msgtime / 1000, UTC), msgtype=msgtype[:32],
        text=text[:MAX_TEXT] if isinstance(text, str) else None,
        recalled_msgid=recalled if isinstance(recalled, str) and action == RECALL else None)
