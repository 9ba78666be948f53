"""The corp's chat archive (会话内容存档, wecom-reference §5.15) and the figures WeCom derives
from group traffic (groupchat/statistic, §5.16).

WeCom archives every message of an archived staff member's customer groups; the SDK's
GetChatData serves the records after a seq, encrypted. The simulator keeps the records in
`World.archive` (seq from 1) and serves them through `msgaudit/sim_getchatdata`, its stand-in
for GetChatData (the SDK's wire protocol is closed): the same page shape, `publickey_ver` 0, no
random key, and `encrypt_chat_msg` the message JSON in base64. A poisoned record is served as
it was given, so a reader meets what makes the real SDK's DecryptData abort.

Messages only happen in the client, so they are scenarios (group_message, group_recall,
archive_poison); each call that adds records queues one `msgaudit_notify` event, as WeCom says
"new data" (at most every 15 s there; here once per scenario call).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from app.engine.wecom.xmlutil import build_xml
from app.faces.sim.checks import INVALID, need_list, opt_obj
from app.faces.sim.clock import SHANGHAI, shanghai_day
from app.faces.sim.state import ArchiveRecord, Call, Group, Json, Reject, ScenarioError, World

APP = "archive"  # the token scope of msgaudit/* (the archive secret's)
PAGE_MAX = 1000  # GetChatData's limit
BAD_PARAMETER = 10000  # the SDK's 参数错误
RECALL_WINDOW_S = 120  # a sender recalls within 2 minutes; the group owner any time
STAT_SPAN_DAYS = 30  # groupchat/statistic: at most 30 days in one call
STAT_KEPT_DAYS = 180  # and at most 180 days back
OWNER_FILTER_MAX = 100
STAT_FIELDS = ("new_chat_cnt", "chat_total", "chat_has_msg", "new_member_cnt", "member_total",
               "member_has_msg", "msg_total", "migrate_trainee_chat_cnt")  # order_by 1..8


# --- records ---------------------------------------------------------------------------------


def encode(message: Json) -> str:
    """A message as the simulator's `encrypt_chat_msg`: its UTF-8 JSON in base64."""
    return base64.b64encode(json.dumps(message, ensure_ascii=False).encode("utf-8")).decode()


def decoded(record: ArchiveRecord) -> Json:
    """A record for inspection (GET /sim/archive): its message, or the raw text it holds."""
    out: Json = {"seq": record.seq, "msgid": record.msgid}
    if record.message is None:
        return {**out, "poisoned": True, "encrypt_chat_msg": record.encrypt_chat_msg}
    return {**out, "message": record.message}


def _append(world: World, msgid: str, chat_msg: str, message: Json | None) -> ArchiveRecord:
    if msgid in world.archived:
        raise ScenarioError(f"msgid {msgid} is in the archive already", 409)
    record = ArchiveRecord(len(world.archive) + 1, msgid, chat_msg, message)
    world.archive.append(record)
    world.archived[msgid] = record
    return record


def _msgid(world: World, at_s: float) -> str:
    # WeCom's look: digits, the second, and `_external` for a chat with external contacts
    # (every customer group).
    return f"{world.new_id('', 11)}_{int(at_s)}_external"


def _moment(world: World, at: float | None) -> float:
    now = world.now()
    if at is None:
        return now
    if at > now + 1:
        raise ScenarioError("`at` is after the simulator's now: messages happen in the past")
    return at


def _group(world: World, chat_id: str) -> Group:
    group = world.groups.get(chat_id)
    if group is None or group.dismissed:
        raise ScenarioError(f"no live group {chat_id}", 404)
    return group


def post_text(world: World, chat_id: str, sender: str, text: str, at: float | None = None,
              msgid: str | None = None) -> ArchiveRecord:
    """`sender` (a staff member or a customer in the group) posts `text` in the group at `at`
    (default: now); the archive gets the message."""
    group = _group(world, chat_id)
    member = group.members.get(sender)
    if member is None:
        raise ScenarioError(f"{sender} is not in {chat_id}", 409)
    moment = _moment(world, at)
    if moment < member.join_time:
        raise ScenarioError(f"{sender} joined {chat_id} after `at`", 409)
    if not text:
        raise ScenarioError("text is empty")
    msgid = msgid or _msgid(world, moment)
    message: Json = {"msgid": msgid, "action": "send", "from": sender,
               "tolist": [m for m in group.members if m != sender], "roomid": chat_id,
               "msgtime": int(moment * 1000), "msgtype": "text", "text": {"content": text}}
    return _append(world, msgid, encode(message), message)


def recall(world: World, msgid: str, by: str | None = None,
           at: float | None = None) -> ArchiveRecord:
    """A group message is recalled: by its sender within 2 minutes, or by the group's owner."""
    original = world.archived.get(msgid)
    sent = original.message if original else None
    if original is None or sent is None or sent.get("action") != "send" \
            or not sent.get("roomid"):
        raise ScenarioError(f"no group message {msgid} in the archive", 404)
    if any(r.message and r.message.get("revoke", {}).get("pre_msgid") == msgid
           for r in world.archive[original.seq:]):
        raise ScenarioError(f"{msgid} was recalled already", 409)
    chat_id, sender = sent["roomid"], sent["from"]
    group = _group(world, chat_id)
    by = by or sender
    moment = _moment(world, at)
    late_ms = moment * 1000 - sent["msgtime"]
    if late_ms < 0:
        raise ScenarioError("`at` is before the message", 409)
    if by == sender:
        if late_ms > RECALL_WINDOW_S * 1000:
            raise ScenarioError(f"a sender recalls within {RECALL_WINDOW_S} s", 409)
    elif by != group.owner:
        raise ScenarioError(f"only the sender or the owner of {chat_id} recalls it", 409)
    message: Json = {"msgid": _msgid(world, moment), "action": "recall", "from": by,
                     "tolist": [],
               "roomid": chat_id, "msgtime": int(moment * 1000), "msgtype": "revoke",
               "revoke": {"pre_msgid": msgid}}
    return _append(world, message["msgid"], encode(message), message)


def poison(world: World, encrypt_chat_msg: str, msgid: str | None = None) -> ArchiveRecord:
    """A record whose `encrypt_chat_msg` is what the caller gave (by default not base64 JSON):
    the kind that makes the SDK's DecryptData abort."""
    return _append(world, msgid or _msgid(world, world.now()), encrypt_chat_msg, None)


def notify(world: World) -> None:
    """Queue WeCom's "new archive data" event for the bot URL. WeCom sends one per window
    (15 s), never two alike; two here within a second would be the same payload, which the
    service rightly takes for a retry of the first: the later one is stamped a second on."""
    world.archive_notified_s = max(world.now_s(), world.archive_notified_s + 1)
    world.queue_callback("msgaudit_notify", build_xml({
        "ToUserName": world.settings.corp_id, "FromUserName": "sys",
        "CreateTime": world.archive_notified_s, "MsgType": "event",
        "Event": "msgaudit_notify", "AgentID": world.settings.agent_id}))


# --- APIs: msgaudit/* (the archive secret's token) -------------------------------------------


def _whole(body: Json, key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject(BAD_PARAMETER, f"missing or invalid {key}")
    return value


def sim_getchatdata(world: World, call: Call) -> Json:
    """The records after `seq` (excluded), at most `limit` (1..1000): GetChatData's page."""
    seq, limit = _whole(call.body, "seq", 0), _whole(call.body, "limit")
    if seq < 0:
        raise Reject(BAD_PARAMETER, "seq must be 0 or more")
    if not 1 <= limit <= PAGE_MAX:
        raise Reject(BAD_PARAMETER, f"limit must be 1..{PAGE_MAX}")
    return {"chatdata": [{"seq": r.seq, "msgid": r.msgid, "publickey_ver": 0,
                          "encrypt_random_key": "", "encrypt_chat_msg": r.encrypt_chat_msg}
                         for r in world.archive[seq:seq + limit]]}


def get_permit_user_list(world: World, call: Call) -> Json:
    """The archived staff: every member of the simulated corp (type 1 office, 2 service,
    3 both; the simulator archives everyone for every type)."""
    kind = call.body.get("type")
    if kind is not None and kind not in (1, 2, 3):
        raise Reject(INVALID, "invalid type: must be 1, 2 or 3")
    return {"ids": sorted(world.members)}


# --- APIs: groupchat/statistic (the contact secret's token) ----------------------------------


@dataclass
class _Figures:
    """One owner's (or one day's) figures, gathered as sets and counts."""

    new_chats: set[str] = field(default_factory=set)
    chats: set[str] = field(default_factory=set)
    chats_with_msg: set[str] = field(default_factory=set)
    new_members: int = 0
    members: int = 0
    speakers: set[tuple[str, str]] = field(default_factory=set)
    messages: int = 0

    def data(self) -> Json:
        return {"new_chat_cnt": len(self.new_chats), "chat_total": len(self.chats),
                "chat_has_msg": len(self.chats_with_msg), "new_member_cnt": self.new_members,
                "member_total": self.members, "member_has_msg": len(self.speakers),
                "msg_total": self.messages, "migrate_trainee_chat_cnt": 0}


def _days(world: World, body: Json) -> list[date]:
    """The Asia/Shanghai days of the request, up to yesterday (today has no figures yet)."""
    begin = _stat_int(body, "day_begin_time")
    end = _stat_int(body, "day_end_time", begin)
    first, last = shanghai_day(begin), shanghai_day(end)
    today = shanghai_day(world.now())
    if last < first or (last - first).days >= STAT_SPAN_DAYS:
        raise Reject(INVALID, f"day_end_time: within {STAT_SPAN_DAYS} days of day_begin_time")
    if first < today - timedelta(days=STAT_KEPT_DAYS):
        raise Reject(INVALID, f"day_begin_time: only the last {STAT_KEPT_DAYS} days are kept")
    last = min(last, today - timedelta(days=1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _stat_int(body: Json, key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Reject(INVALID, f"missing or invalid {key}")
    return value


def _owners(body: Json) -> list[str]:
    owners = need_list(opt_obj(body, "owner_filter") or {}, "userid_list",
                       max_len=OWNER_FILTER_MAX)
    if not all(isinstance(o, str) and o for o in owners):
        raise Reject(INVALID, "invalid owner_filter.userid_list")
    return list(dict.fromkeys(owners))


def _day_bounds(days: list[date]) -> tuple[float, float]:
    start = datetime.combine(days[0], time(), SHANGHAI).timestamp()
    end = datetime.combine(days[-1] + timedelta(days=1), time(), SHANGHAI).timestamp()
    return start, end


def _figures(world: World, owners: Iterable[str], days: list[date]) -> _Figures:
    """The owners' live groups over the days. The simulator forgets who left a group and
    when a group was dismissed, so member figures count the members still there and a
    dismissed group counts nowhere (WeCom's would count both for the days before)."""
    figures = _Figures()
    if not days:
        return figures
    start, end = _day_bounds(days)
    owners = set(owners)
    mine = {g.chat_id: g for g in world.groups.values()
            if g.owner in owners and g.create_time < end and not g.dismissed}
    for group in mine.values():
        figures.chats.add(group.chat_id)
        if group.create_time >= start:
            figures.new_chats.add(group.chat_id)
        joined = [m.join_time for m in group.members.values() if m.join_time < end]
        figures.members += len(joined)
        figures.new_members += sum(t >= start for t in joined)
    for record in world.archive:
        sent = record.message
        if sent is None or sent.get("action") != "send" or sent.get("roomid") not in mine:
            continue
        if start * 1000 <= sent["msgtime"] < end * 1000:
            figures.messages += 1
            figures.chats_with_msg.add(sent["roomid"])
            figures.speakers.add((sent["roomid"], sent["from"]))
    return figures


def groupchat_statistic(world: World, call: Call) -> Json:
    """Per owner over the days asked (§5.16), sorted by `order_by` (1..8), paged by
    offset/limit."""
    days, owners = _days(world, call.body), _owners(call.body)
    order_by = _stat_int(call.body, "order_by", 1)
    if not 1 <= order_by <= len(STAT_FIELDS):
        raise Reject(INVALID, f"order_by must be 1..{len(STAT_FIELDS)}")
    ascending = _stat_int(call.body, "order_asc", 0) == 1
    offset, limit = _stat_int(call.body, "offset", 0), _stat_int(call.body, "limit", 500)
    if not 1 <= limit <= 1000:
        raise Reject(INVALID, "limit must be 1..1000")
    items: list[Json] = [{"owner": owner, "data": _figures(world, [owner], days).data()}
             for owner in owners]
    key = STAT_FIELDS[order_by - 1]
    items.sort(key=lambda item: item["data"][key], reverse=not ascending)
    page = items[offset:offset + limit]
    return {"total": len(items), "next_offset": offset + len(page), "items": page}


def groupchat_statistic_group_by_day(world: World, call: Call) -> Json:
    """The owners' groups together, one item per day (stat_time: the day's 00:00)."""
    days, owners = _days(world, call.body), _owners(call.body)
    return {"items": [{"stat_time": int(_day_bounds([day])[0]),
                       "data": _figures(world, owners, [day]).data()} for day in days]}
