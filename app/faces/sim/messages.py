"""Messages to members and internal groups: message/send, the group robot webhook, appchat,
and media/upload (temporary media used by all message APIs)."""

from __future__ import annotations

import re

from app.faces.sim.checks import INVALID, need_list, need_str, opt_str
from app.faces.sim.content import app_message, webhook_message
from app.faces.sim.state import Binary, Call, Json, Media, Reject, World

WEBHOOK_PER_MINUTE = 20
MEDIA_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024,
                "video": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
MAGIC = {"image": (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"), "voice": (b"#!AMR",)}
APPCHAT_ID = re.compile(r"[0-9A-Za-z]{1,32}")


def message_send(world: World, call: Call) -> Json:
    """Unknown recipients are reported back, not refused, unless nobody is left (81013)."""
    body = call.body
    _check_agent(world, body.get("agentid"))
    touser, toparty, totag = (opt_str(body, k) for k in ("touser", "toparty", "totag"))
    if not (touser or toparty or totag):
        raise Reject(INVALID, "touser, toparty and totag are all empty")
    users = sorted(world.members) if touser == "@all" else [u for u in touser.split("|") if u]
    if len(users) > 1000 and touser != "@all":
        raise Reject(40032, "more than 1000 users")
    message = app_message(world, body)
    valid = [u for u in users if u in world.members]
    invalid = [u.lower() for u in users if u not in world.members]
    if not valid and not toparty and not totag:
        raise Reject(81013, "all recipients are invalid")
    msgid = world.new_id("appmsgSim", 16)
    world.app_messages.append({"via": "message/send", "msgid": msgid, "touser": valid,
                               "toparty": toparty, "totag": totag,
                               "send_time": world.now_s(), **message})
    return {"invaliduser": "|".join(invalid), "invalidparty": "", "invalidtag": "",
            "unlicenseduser": "", "msgid": msgid}


def _check_agent(world: World, agentid: object) -> None:
    if agentid is None or agentid == "":
        raise Reject(41011, "agentid missing")
    if str(agentid) != str(world.settings.agent_id):
        raise Reject(40056, "invalid agentid")


def webhook_send(world: World, call: Call) -> Json:
    """A known key, at most 20 messages in any minute (45009 beyond)."""
    robot = world.robots.get(call.query.get("key", ""))
    if robot is None:
        raise Reject(93000, "invalid webhook url")
    now = world.now()
    while robot.recent and now - robot.recent[0] >= 60:
        robot.recent.popleft()
    if len(robot.recent) >= WEBHOOK_PER_MINUTE:
        raise Reject(45009, f"api freq out of limit: {WEBHOOK_PER_MINUTE} messages per minute")
    message = webhook_message(call.body)
    robot.recent.append(now)
    robot.sent.append({"send_time": world.now_s(), **message})
    return {}


def appchat_create(world: World, call: Call) -> Json:
    body = call.body
    userlist = need_list(body, "userlist", min_len=0)
    if not 2 <= len(userlist) <= 2000:
        raise Reject(86006, "userlist needs 2 to 2000 members")
    if any(u not in world.members for u in userlist):
        raise Reject(86007, "invalid member in userlist")
    name = opt_str(body, "name")
    if len(name) > 50:
        raise Reject(86004, "invalid name")
    owner = opt_str(body, "owner") or userlist[0]
    if owner not in userlist:
        raise Reject(86005, "invalid owner")
    chatid = opt_str(body, "chatid") or world.new_id("appchatSim")
    if not APPCHAT_ID.fullmatch(chatid) or chatid in world.appchats:
        raise Reject(86001, "invalid chatid")
    world.appchats[chatid] = {"chatid": chatid, "name": name, "owner": owner,
                              "userlist": userlist, "messages": []}
    return {"chatid": chatid}


def appchat_send(world: World, call: Call) -> Json:
    chatid = need_str(call.body, "chatid", code=86001)
    chat = world.appchats.get(chatid)
    if chat is None:
        raise Reject(86003, "chatid not found")
    message = app_message(world, call.body)
    entry = {"via": "appchat/send", "chatid": chatid, "send_time": world.now_s(), **message}
    chat["messages"].append(entry)
    world.app_messages.append(entry)
    return {}


def media_upload(world: World, call: Call) -> Json:
    """Temporary media: >5 bytes, per-type size caps and formats; valid for 3 days."""
    kind = call.query.get("type", "")
    if kind not in MEDIA_LIMITS:
        raise Reject(40005, "invalid type: image, voice, video or file")
    upload = call.upload
    if upload is None or not upload.data:
        raise Reject(44001, "empty media data: send a multipart part named media")
    if len(upload.data) <= 5:
        raise Reject(40006, "invalid file size: must be larger than 5 bytes")
    if len(upload.data) > MEDIA_LIMITS[kind]:
        raise Reject(45001, f"{kind} larger than {MEDIA_LIMITS[kind]} bytes")
    if not _format_ok(kind, upload.data):
        raise Reject(40004, f"invalid media file type for {kind}")
    media = Media(world.new_id("3Sim", 40), kind, upload.filename, len(upload.data),
                  world.now_s(), upload.data)
    world.media[media.media_id] = media
    return {"type": kind, "media_id": media.media_id, "created_at": str(media.created_at)}


def _format_ok(kind: str, data: bytes) -> bool:
    if kind == "video":
        return data[4:8] == b"ftyp"  # MP4
    return kind not in MAGIC or data.startswith(MAGIC[kind])


MEDIA_LIFETIME_S = 3 * 24 * 3600
CONTENT_TYPES = {"image": "image/jpeg", "voice": "audio/amr", "video": "video/mp4",
                 "file": "application/octet-stream"}


def media_get(world: World, call: Call) -> Binary:
    """A temporary media file's bytes; 40007 for an unknown or expired media_id."""
    media = world.media.get(call.query.get("media_id", ""))
    if media is None or world.now_s() - media.created_at > MEDIA_LIFETIME_S:
        raise Reject(40007, "invalid media_id")
    return Binary(media.content, CONTENT_TYPES.get(media.type, "application/octet-stream"),
                  media.filename)


def add_media(world: World, kind: str, filename: str, content: bytes) -> Media:
    """A file a customer sent (kf image messages carry its media_id)."""
    media = Media(world.new_id("3Sim", 40), kind, filename, len(content), world.now_s(),
                  content)
    world.media[media.media_id] = media
    return media
