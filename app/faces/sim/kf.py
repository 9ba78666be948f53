"""微信客服 (kf, §4.7 and §5.11): customer messages, sync_msg paging, the 48 h / 5-answer window,
session states 0-4 and the codes of send_msg_on_event.

kf/send_msg answers ok even when the message cannot be delivered, as WeCom does: the failure
arrives later as a `msg_send_fail` event that the bot reads through kf/sync_msg after a
kf_msg_or_event callback.
"""

from __future__ import annotations

from app.faces.sim import payloads
from app.faces.sim.checks import INVALID, check_msgid, need_int, need_str, page_limit
from app.faces.sim.contacts import require_member
from app.faces.sim.content import kf_message
from app.faces.sim.messages import add_media
from app.faces.sim.state import Call, Json, KfCode, KfSession, Reject, World

WINDOW_S = 48 * 3600
ANSWERS_PER_MESSAGE = 5
SYNC_TOKEN_S = 600
HISTORY_S = 3 * 24 * 3600  # sync_msg without a cursor starts 3 days back
FAIL_EXPIRED, FAIL_OVER_LIMIT = 4, 6
ORIGIN_CUSTOMER, ORIGIN_EVENT = 3, 4
# Which states a session may move to with service_state/trans (4 = ended is final).
TRANSITIONS = {0: {1, 2, 3, 4}, 1: {2, 3, 4}, 2: {3, 4}, 3: {3, 4}, 4: set()}
CODE_LIFETIME_S = {"welcome": 20, "end": 20, "queue": WINDOW_S, "accept": WINDOW_S}
CODE_MSGTYPES = {"welcome": ("text", "msgmenu"), "end": ("text", "msgmenu"),
                 "queue": ("text",), "accept": ("text",)}


def session(world: World, open_kfid: str, external_userid: str) -> KfSession:
    key = (open_kfid, external_userid)
    if key not in world.kf_sessions:
        world.kf_sessions[key] = KfSession(open_kfid, external_userid)
    return world.kf_sessions[key]


def _account(world: World, body: Json) -> str:
    open_kfid = need_str(body, "open_kfid", code=95000)
    if open_kfid not in world.kf_accounts:
        raise Reject(95004, f"open_kfid not found: {open_kfid}")
    return open_kfid


def _log(world: World, entry: Json) -> Json:
    entry = {"msgid": world.new_id("kfmsgSim", 8), "send_time": world.now_s(), **entry}
    entry["seq"] = len(world.kf_log) + 1
    world.kf_log.append(entry)
    return entry


def _notify(world: World, open_kfid: str) -> None:
    """kf_msg_or_event with a fresh Token (valid 10 minutes) for kf/sync_msg."""
    token = world.new_id("ENCSim", 24)
    world.kf_tokens[token] = world.now() + SYNC_TOKEN_S
    world.queue_callback("kf_msg_or_event", payloads.kf_msg_or_event(
        world.settings.corp_id, world.now_s(), token, open_kfid))


# --- scenarios ----------------------------------------------------------------------------------


def customer_message(world: World, open_kfid: str, external_userid: str, text: str = "",
                     menu_id: str | None = None) -> Json:
    """A customer writes text (or picks a menu item)."""
    body: Json = {"content": text, **({"menu_id": menu_id} if menu_id else {})}
    return _customer_wrote(world, open_kfid, external_userid, {"msgtype": "text", "text": body})


def customer_image(world: World, open_kfid: str, external_userid: str, content: bytes,
                   filename: str = "photo.jpg") -> Json:
    """A customer sends a picture: a media file (media/get serves it) and an image message."""
    media = add_media(world, "image", filename, content)
    return _customer_wrote(world, open_kfid, external_userid,
                           {"msgtype": "image", "image": {"media_id": media.media_id}})


def _customer_wrote(world: World, open_kfid: str, external_userid: str, message: Json) -> Json:
    """Whatever a customer sends opens the 48 h window, resets the 5-answer budget and reopens
    an ended session as state 0."""
    world.kf_accounts.add(open_kfid)
    world.customer(external_userid)
    state = session(world, open_kfid, external_userid)
    if state.state == 4:
        state.state, state.servicer_userid = 0, ""
    state.last_customer_msg_at, state.answers = world.now(), 0
    entry = _log(world, {"open_kfid": open_kfid, "external_userid": external_userid,
                         "origin": ORIGIN_CUSTOMER, **message})
    _notify(world, open_kfid)
    return entry


def enter_session(world: World, open_kfid: str, external_userid: str, scene: str = "",
                  scene_param: str = "") -> Json:
    """The customer opens the kf chat; a welcome code only if they wrote nothing in 48 h."""
    world.kf_accounts.add(open_kfid)
    world.customer(external_userid)
    state = session(world, open_kfid, external_userid)
    event: Json = {"event_type": "enter_session", "open_kfid": open_kfid,
                   "external_userid": external_userid, "scene": scene,
                   "scene_param": scene_param}
    if not _in_window(world, state):
        event["welcome_code"] = _new_code(world, "welcome", open_kfid, external_userid)
    entry = _log(world, {"origin": ORIGIN_EVENT, "msgtype": "event", "event": event})
    _notify(world, open_kfid)
    return entry


def _in_window(world: World, state: KfSession) -> bool:
    last = state.last_customer_msg_at
    return last is not None and world.now() - last <= WINDOW_S


def _new_code(world: World, kind: str, open_kfid: str, external_userid: str) -> str:
    code = world.new_id(f"{kind.upper()}CODESim", 16)
    world.kf_codes[code] = KfCode(code, kind, open_kfid, external_userid,
                                  world.now() + CODE_LIFETIME_S[kind])
    return code


# --- APIs ---------------------------------------------------------------------------------------


def sync_msg(world: World, call: Call) -> Json:
    """Pages of `limit` messages after `cursor`. `call.empty_page` (a fault) answers has_more=1
    with nothing, as WeCom does now and then: clients must loop on has_more, not on the list."""
    body = call.body
    _check_sync_token(world, body.get("token"))
    limit = page_limit(body, 1000, 1000)
    after = _cursor_seq(world, body.get("cursor"))
    wanted = _account(world, body) if body.get("open_kfid") else None
    if call.empty_page:
        return {"next_cursor": body.get("cursor") or _cursor(world, after), "has_more": 1,
                "msg_list": []}
    found = [m for m in world.kf_log if m["seq"] > after and _visible(world, m, after, wanted)]
    page = found[:limit]
    last = page[-1]["seq"] if page else after
    return {"next_cursor": _cursor(world, last), "has_more": int(len(found) > limit),
            "msg_list": [{k: v for k, v in m.items() if k != "seq"} for m in page]}


def _check_sync_token(world: World, token: object) -> None:
    if token is None or token == "":
        return  # allowed; WeCom then applies strict rate limits (not modelled)
    expiry = world.kf_tokens.get(token) if isinstance(token, str) else None
    if expiry is None or world.now() > expiry:
        raise Reject(95007, "invalid or expired token")


def _visible(world: World, entry: Json, after: int, open_kfid: str | None) -> bool:
    if after == 0 and entry["send_time"] < world.now() - HISTORY_S:
        return False
    owner = entry.get("open_kfid") or entry.get("event", {}).get("open_kfid")
    return open_kfid is None or owner == open_kfid


def _cursor(world: World, seq: int) -> str:
    # Marked with this world's own id: a cursor from another run of the simulator (its
    # messages are gone) is refused, as WeCom refuses a cursor it did not hand out.
    return f"sim{world.kf_epoch}{seq:08x}" if seq else ""


def _cursor_seq(world: World, cursor: object) -> int:
    if cursor in (None, ""):
        return 0
    text = str(cursor)
    digits = text.removeprefix(f"sim{world.kf_epoch}")
    if digits == text or not digits or any(c not in "0123456789abcdef" for c in digits):
        raise Reject(INVALID, "invalid cursor")
    return int(digits, 16)


def send_msg(world: World, call: Call) -> Json:
    body = call.body
    open_kfid = _account(world, body)
    touser = need_str(body, "touser")
    msgid = _own_msgid(world, open_kfid, body)
    message = kf_message(world, body)
    state = session(world, open_kfid, touser)
    if state.state not in (0, 1):
        raise Reject(95018, f"session state {state.state} does not allow sending")
    fail_type = _fail_type(world, state)
    if fail_type is None:
        state.answers += 1
    _record_sent(world, msgid, open_kfid, touser, message, fail_type)
    return {"msgid": msgid}


def _own_msgid(world: World, open_kfid: str, body: Json) -> str:
    msgid = check_msgid(body)
    if msgid is None:
        return world.new_id("kfsendSim", 8)
    if any(s["msgid"] == msgid and s["open_kfid"] == open_kfid for s in world.kf_sent):
        raise Reject(INVALID, "msgid already used for this kf account")
    return msgid


def _fail_type(world: World, state: KfSession) -> int | None:
    if not _in_window(world, state):
        return FAIL_EXPIRED
    if state.answers >= ANSWERS_PER_MESSAGE:
        return FAIL_OVER_LIMIT
    return None


def _record_sent(world: World, msgid: str, open_kfid: str, touser: str, message: Json,
                 fail_type: int | None, via: str = "send_msg") -> None:
    world.kf_sent.append({"msgid": msgid, "open_kfid": open_kfid, "touser": touser,
                          "send_time": world.now_s(), "via": via, **message,
                          "delivered": fail_type is None, "fail_type": fail_type})
    if fail_type is not None:
        _log(world, {"origin": ORIGIN_EVENT, "msgtype": "event", "event": {
            "event_type": "msg_send_fail", "open_kfid": open_kfid, "external_userid": touser,
            "fail_msgid": msgid, "fail_type": fail_type}})
        _notify(world, open_kfid)


def send_msg_on_event(world: World, call: Call) -> Json:
    """One message per code, within the code's lifetime (welcome and end codes: 20 s)."""
    body = call.body
    code = world.kf_codes.get(need_str(body, "code"))
    if code is None or code.used or world.now() > code.expires_at:
        raise Reject(INVALID, "invalid, used or expired code")
    if body.get("msgtype") not in CODE_MSGTYPES[code.kind]:
        raise Reject(40008, f"msgtype not allowed for a {code.kind} code")
    msgid = check_msgid(body) or world.new_id("kfsendSim", 8)
    message = kf_message(world, body)
    code.used = True
    _record_sent(world, msgid, code.open_kfid, code.external_userid, message, None,
                 via=f"send_msg_on_event/{code.kind}")
    return {"msgid": msgid}


def service_state_get(world: World, call: Call) -> Json:
    open_kfid = _account(world, call.body)
    state = session(world, open_kfid, need_str(call.body, "external_userid"))
    return {"service_state": state.state, "servicer_userid": state.servicer_userid}


def service_state_trans(world: World, call: Call) -> Json:
    body = call.body
    open_kfid = _account(world, body)
    external_userid = need_str(body, "external_userid")
    target = need_int(body, "service_state", (0, 1, 2, 3, 4))
    state = session(world, open_kfid, external_userid)
    if target not in TRANSITIONS[state.state]:
        raise Reject(95016, f"cannot change session state {state.state} to {target}")
    if target == 3:
        state.servicer_userid = require_member(world, need_str(body, "servicer_userid"))
    state.state = target
    kind = {2: "queue", 3: "accept", 4: "end"}.get(target)
    return {"msg_code": _new_code(world, kind, open_kfid, external_userid)} if kind else {}
