"""Customer contact: friend adds, welcome messages, externalcontact/get, corp tags, 联系我.

Changes made through these APIs queue no callback: WeCom only reports changes made by people
in the client (§4.4, §4.6).
"""

from __future__ import annotations

from app.faces.sim import payloads
from app.faces.sim.checks import (
    INVALID,
    cursor_index,
    need_int,
    need_str,
    opt_list,
    opt_str,
    page_limit,
)
from app.faces.sim.content import check_attachments, check_text
from app.faces.sim.state import (
    Call,
    Follow,
    Json,
    Reject,
    ScenarioError,
    Tag,
    TagGroup,
    WelcomeCode,
    World,
)

WELCOME_WINDOW_S = 20
TAG_CAP = 3000


def require_member(world: World, userid: str) -> str:
    if userid not in world.members:
        raise Reject(60111, f"userid not found: {userid}")
    return userid


def require_follow(world: World, userid: str, external_userid: str) -> Follow:
    follow = world.follows.get((userid, external_userid))
    if follow is None:
        raise Reject(84061, "no external contact relationship")
    return follow


# --- scenarios: what customers do in WeChat -----------------------------------------------------


def friend_add(world: World, userid: str, external_userid: str | None = None, state: str = "",
               name: str | None = None, welcome: bool = True) -> tuple[Follow, str | None]:
    """A customer becomes friends with a member: relationship, welcome code, callback."""
    world.members.add(userid)
    external_userid = external_userid or world.new_id("wmSim", 8)
    if (userid, external_userid) in world.follows:
        raise ScenarioError(f"{external_userid} is already a customer of {userid}", 409)
    world.customer(external_userid, name)
    follow = Follow(userid, external_userid, world.now_s(), state=state)
    world.follows[(userid, external_userid)] = follow
    code = _issue_welcome_code(world, userid, external_userid) if welcome else None
    world.queue_callback("change_external_contact/add_external_contact", payloads.external_contact(
        world.settings.corp_id, world.now_s(), "add_external_contact", userid, external_userid,
        state=state, welcome_code=code))
    return follow, code


def scan_contact_way(world: World, config_id: str | None, state: str) -> tuple[str, str]:
    """A customer scanning a 联系我 code, named by its config_id or its state: (the staff
    member it adds, the code's state). Several users take turns, as WeCom spreads them."""
    ways = [w for w in world.contact_ways.values()
            if (w["config_id"] == config_id if config_id else w.get("state") == state)]
    if not ways or not ways[0].get("user"):
        named = f"config_id {config_id}" if config_id else f"state {state!r}"
        raise ScenarioError(f"no 联系我 code with {named} and a user", 404)
    way = ways[0]
    way["scans"] = way.get("scans", 0) + 1
    users = way["user"]
    return users[(way["scans"] - 1) % len(users)], way.get("state", "")


def _issue_welcome_code(world: World, userid: str, external_userid: str) -> str:
    code = world.new_id("WCSim", 24)
    world.welcome_codes[code] = WelcomeCode(code, userid, external_userid, world.now())
    return code


def friend_delete(world: World, userid: str, external_userid: str, by: str = "customer") -> None:
    """`by` customer → del_follow_user; `by` staff → del_external_contact."""
    if world.follows.pop((userid, external_userid), None) is None:
        raise ScenarioError(f"{external_userid} is not a customer of {userid}", 404)
    change = "del_follow_user" if by == "customer" else "del_external_contact"
    world.queue_callback(f"change_external_contact/{change}", payloads.external_contact(
        world.settings.corp_id, world.now_s(), change, userid, external_userid))


# --- APIs ---------------------------------------------------------------------------------------


def send_welcome_msg(world: World, call: Call) -> Json:
    """One message per welcome code, within 20 s: 41051 after the first use, 41050 when late."""
    code = need_str(call.body, "welcome_code")
    text, attachments = check_text(call.body, 4000), check_attachments(world, call.body)
    if not text and not attachments:
        raise Reject(INVALID, "text and attachments are both empty")
    entry = world.welcome_codes.get(code)
    if entry is None:
        raise Reject(41050, "invalid welcome_code")
    if entry.used_at is not None:
        raise Reject(41051, "welcome_code already used")
    if world.now() > entry.issued_at + WELCOME_WINDOW_S:
        raise Reject(41050, "welcome_code expired")
    entry.used_at = world.now()
    entry.sent = {"text": text, "attachments": attachments}
    return {}


def get_external_contact(world: World, call: Call) -> Json:
    external_userid = call.query.get("external_userid", "")
    if not external_userid:
        raise Reject(40096, "invalid external_userid")
    follows = [f for f in world.follows.values() if f.external_userid == external_userid]
    if not follows:
        raise Reject(84061, "no external contact relationship")
    customer = world.customer(external_userid)
    contact = {"external_userid": external_userid, "name": customer.name, "type": customer.type,
               "gender": customer.gender, "avatar": f"https://wx.qlogo.cn/sim/{external_userid}"}
    return {"external_contact": contact, "follow_user": [_follow_json(world, f) for f in follows]}


def _follow_json(world: World, follow: Follow) -> Json:
    tags = [_tag_ref(world, world.tags[t]) for t in sorted(follow.tags) if t in world.tags]
    return {"userid": follow.userid, "remark": follow.remark, "description": follow.description,
            "createtime": follow.createtime, "tags": tags, "remark_mobiles": [],
            "add_way": follow.add_way, "oper_userid": follow.external_userid,
            "state": follow.state}


def _tag_ref(world: World, tag: Tag) -> Json:
    group = world.tag_groups[tag.group_id]
    return {"group_name": group.group_name, "tag_name": tag.name, "type": 1, "tag_id": tag.id}


def mark_tag(world: World, call: Call) -> Json:
    userid = require_member(world, need_str(call.body, "userid"))
    follow = require_follow(world, userid, need_str(call.body, "external_userid", code=40096))
    add, remove = opt_list(call.body, "add_tag"), opt_list(call.body, "remove_tag")
    if not add and not remove:
        raise Reject(INVALID, "add_tag and remove_tag are both empty")
    for tag_id in [*add, *remove]:
        if tag_id not in world.tags:
            raise Reject(40068, f"invalid tag id: {tag_id}")
    follow.tags = (follow.tags | set(add)) - set(remove)
    return {}


def get_corp_tag_list(world: World, call: Call) -> Json:
    """group_id wins over tag_id; both empty means everything."""
    group_ids, tag_ids = opt_list(call.body, "group_id"), opt_list(call.body, "tag_id")
    if group_ids:
        groups = [world.tag_groups[g] for g in group_ids if g in world.tag_groups]
        return {"tag_group": [_group_json(world, g) for g in groups]}
    groups = sorted(world.tag_groups.values(), key=lambda g: -g.order)
    wanted = set(tag_ids) if tag_ids else None
    listed = [_group_json(world, g, wanted) for g in groups]
    return {"tag_group": [g for g in listed if g["tag"] or wanted is None]}


def _group_json(world: World, group: TagGroup, wanted: set[str] | None = None) -> Json:
    tags = [world.tags[t] for t in group.tag_ids if wanted is None or t in wanted]
    return {"group_id": group.group_id, "group_name": group.group_name,
            "create_time": group.create_time, "order": group.order,
            "tag": [{"id": t.id, "name": t.name, "create_time": t.create_time,
                     "order": t.order} for t in sorted(tags, key=lambda t: -t.order)]}


def add_corp_tag(world: World, call: Call) -> Json:
    tags = opt_list(call.body, "tag")
    if not tags or not all(isinstance(t, dict) for t in tags):
        raise Reject(INVALID, "tag needs at least one {name}")
    if len(world.tags) + len(tags) > TAG_CAP:
        raise Reject(40126, f"the corp already has {TAG_CAP} tags")
    group = _tag_group_for(world, call.body)
    names = {world.tags[t].name for t in group.tag_ids}
    created = []
    for spec in tags:
        name = need_str(spec, "name", max_chars=30)
        if name in names:
            raise Reject(40071, f"tag name exists: {name}")
        names.add(name)
        created.append(_new_tag(world, group, name, spec.get("order", 0)))
    return {"tag_group": _group_json(world, group, {t.id for t in created})}


def _tag_group_for(world: World, body: Json) -> TagGroup:
    group_id = body.get("group_id")
    if group_id:
        if group_id not in world.tag_groups:
            raise Reject(40068, "invalid group_id")
        return world.tag_groups[group_id]
    name = need_str(body, "group_name", max_chars=30)
    for group in world.tag_groups.values():
        if group.group_name == name:
            return group
    group = TagGroup(world.new_id("etSimGroup"), name, world.now_s(), int(body.get("order", 0)))
    world.tag_groups[group.group_id] = group
    return group


def _new_tag(world: World, group: TagGroup, name: str, order: object) -> Tag:
    tag = Tag(world.new_id("etSimTag"), name, group.group_id, world.now_s(),
              order if isinstance(order, int) else 0)
    world.tags[tag.id] = tag
    group.tag_ids.append(tag.id)
    return tag


# --- 联系我 (contact ways) ----------------------------------------------------------------------

WAY_FIELDS = ("type", "scene", "style", "remark", "skip_verify", "state", "user", "party",
              "is_temp", "expires_in", "chat_expires_in", "unionid", "is_exclusive",
              "conclusions")


def add_contact_way(world: World, call: Call) -> Json:
    way = _checked_way(world, {"skip_verify": True, **call.body})
    way["config_id"] = world.new_id("cwSim", 24)
    if way["scene"] == 2:
        way["qr_code"] = f"https://wework.qpic.cn/wwpic/sim/{way['config_id']}/0"
    world.contact_ways[way["config_id"]] = way
    return {"config_id": way["config_id"], **({"qr_code": way["qr_code"]}
                                              if "qr_code" in way else {})}


def _checked_way(world: World, body: Json) -> Json:
    way = {key: body[key] for key in WAY_FIELDS if key in body}
    way_type = need_int(way, "type", (1, 2))
    need_int(way, "scene", (1, 2))
    opt_str(way, "remark", max_chars=30)
    opt_str(way, "state", max_chars=30)
    users, parties = opt_list(way, "user", max_len=100), opt_list(way, "party", max_len=100)
    if way_type == 1 and len(users) != 1:
        raise Reject(INVALID, "type 1 needs exactly one user")
    if not users and not parties:
        raise Reject(INVALID, "user and party are both empty")
    for userid in users:
        require_member(world, userid)
    return way


def _way(world: World, body: Json) -> Json:
    config_id = need_str(body, "config_id")
    if config_id not in world.contact_ways:
        raise Reject(INVALID, "invalid config_id")
    return world.contact_ways[config_id]


def get_contact_way(world: World, call: Call) -> Json:
    return {"contact_way": dict(_way(world, call.body))}


def update_contact_way(world: World, call: Call) -> Json:
    way = _way(world, call.body)
    changes = {k: v for k, v in call.body.items() if k in WAY_FIELDS and k not in ("type",
                                                                                    "scene")}
    updated = _checked_way(world, {**way, **changes})
    way.update(updated)
    return {}


def del_contact_way(world: World, call: Call) -> Json:
    del world.contact_ways[_way(world, call.body)["config_id"]]
    return {}


def list_contact_way(world: World, call: Call) -> Json:
    limit = page_limit(call.body, 100, 1000)
    start = cursor_index(call.body)
    ids = list(world.contact_ways)[start:start + limit]
    more = start + limit < len(world.contact_ways)
    return {"contact_way": [{"config_id": c} for c in ids],
            "next_cursor": str(start + limit) if more else ""}
