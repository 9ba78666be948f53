"""Customer groups: group events, groupchat/list|get, 加入群聊 join ways, group welcome templates.

Member joins and quits only happen in the client, so they are scenarios; the join-way APIs change
configuration only and queue no callback.
"""

from __future__ import annotations

import hashlib

from app.faces.sim import payloads
from app.faces.sim.checks import (
    INVALID,
    cursor_index,
    need_int,
    need_list,
    need_str,
    opt_list,
    opt_obj,
    opt_str,
    page_limit,
)
from app.faces.sim.content import check_attachment_object, check_text
from app.faces.sim.state import Call, Group, GroupMember, Json, Reject, ScenarioError, World

QR_JOIN_CAP = 200  # joining by QR code stops at 200 members [COM]
GROUP_CAP = 500
TEMPLATE_CAP = 100
EVENT_TO_GET_SCENE = {0: 1, 3: 3}  # JoinScene in events → join_scene in groupchat/get


def member_version(group: Group) -> str:
    return hashlib.md5(f"{group.chat_id}:{group.version}".encode()).hexdigest()


def live_group(world: World, chat_id: str) -> Group:
    group = world.groups.get(chat_id)
    if group is None:
        raise Reject(40050, f"chat_id not found: {chat_id}")
    if group.dismissed:
        raise Reject(49008, "group dismissed")
    return group


def live_groups(world: World) -> list[Json]:
    """Live groups with owner and members (who, staff 1 or customer 2, joined when)."""
    return [{"chat_id": g.chat_id, "name": g.name, "owner": g.owner,
             "create_time": g.create_time,
             "members": [{"userid": m.userid, "type": m.type, "join_time": m.join_time}
                         for m in g.members.values()]}
            for g in world.groups.values() if not g.dismissed]


# --- scenarios --------------------------------------------------------------------------------


def group_create(world: World, owner: str, chat_id: str | None = None, name: str | None = None,
                 members: list[str] | None = None) -> Group:
    world.members.add(owner)
    chat_id = chat_id or world.new_id("wrSim", 16)
    if chat_id in world.groups:
        raise ScenarioError(f"group {chat_id} exists", 409)
    now = world.now_s()
    group = Group(chat_id, name or f"客户群{len(world.groups) + 1}", owner, now)
    group.members[owner] = GroupMember(owner, 1, now, 1)
    for external_userid in members or []:
        world.customer(external_userid)
        group.members[external_userid] = GroupMember(external_userid, 2, now, 1, invitor=owner)
    world.groups[chat_id] = group
    world.queue_callback("change_external_chat/create", payloads.external_chat(
        world.settings.corp_id, now, chat_id, "create"))
    return group


def group_dismiss(world: World, chat_id: str) -> None:
    group = _scenario_group(world, chat_id)
    group.dismissed = True
    world.queue_callback("change_external_chat/dismiss", payloads.external_chat(
        world.settings.corp_id, world.now_s(), chat_id, "dismiss"))


def _scenario_group(world: World, chat_id: str) -> Group:
    group = world.groups.get(chat_id)
    if group is None or group.dismissed:
        raise ScenarioError(f"no live group {chat_id}", 404)
    return group


def group_join(world: World, ids: list[str], chat_id: str | None = None,
               config_id: str | None = None, join_scene: int = 3, state: str = "") -> Group:
    """Members join by QR (JoinScene 3) or invitation (0); through a join way (config_id) the
    first group under the QR cap is used, or a new one is created when auto_create_room is on."""
    if config_id:
        group = _group_for_join_way(world, config_id)
        state = state or world.join_ways[config_id].get("state", "")
    else:
        group = _scenario_group(world, chat_id or "")
    if len(group.members) + len(ids) > GROUP_CAP:
        raise ScenarioError(f"group {group.chat_id} would exceed {GROUP_CAP} members", 409)
    for member_id in ids:
        if member_id in group.members:
            raise ScenarioError(f"{member_id} is already in {group.chat_id}", 409)
        _add_member(world, group, member_id, join_scene, state)
    _member_event(world, group, "add_member", ids, join_scene)
    return group


def _add_member(world: World, group: Group, member_id: str, scene: int, state: str) -> None:
    is_member = member_id in world.members
    if not is_member:
        world.customer(member_id)
    invitor = group.owner if scene == 0 else None
    group.members[member_id] = GroupMember(member_id, 1 if is_member else 2, world.now_s(),
                                           EVENT_TO_GET_SCENE.get(scene, 3), invitor, state)


def group_quit(world: World, chat_id: str, ids: list[str], quit_scene: int = 0) -> Group:
    group = _scenario_group(world, chat_id)
    for member_id in ids:
        if group.members.pop(member_id, None) is None:
            raise ScenarioError(f"{member_id} is not in {chat_id}", 404)
    _member_event(world, group, "del_member", ids, quit_scene)
    return group


def _member_event(world: World, group: Group, detail: str, ids: list[str], scene: int) -> None:
    last = member_version(group)
    group.version += 1
    update = payloads.member_update(detail, ids, scene, last, member_version(group))
    world.queue_callback(f"change_external_chat/update/{detail}", payloads.external_chat(
        world.settings.corp_id, world.now_s(), group.chat_id, "update", **update))


def _group_for_join_way(world: World, config_id: str) -> Group:
    way = world.join_ways.get(config_id)
    if way is None:
        raise ScenarioError(f"no join way {config_id}", 404)
    for chat_id in way["chat_id_list"]:
        group = world.groups.get(chat_id)
        if group and not group.dismissed and len(group.members) < QR_JOIN_CAP:
            return group
    if not way.get("auto_create_room", 1):
        raise ScenarioError(f"every group of join way {config_id} is full", 409)
    return _auto_create_room(world, way)


def _auto_create_room(world: World, way: Json) -> Group:
    owner = world.groups[way["chat_id_list"][0]].owner
    number = way.get("room_base_id", 1)
    way["room_base_id"] = number + 1
    group = group_create(world, owner, name=f"{way.get('room_base_name', '群')}{number}")
    way["chat_id_list"] = [*way["chat_id_list"], group.chat_id][-5:]
    return group


# --- APIs: groupchat ---------------------------------------------------------------------------


def groupchat_list(world: World, call: Call) -> Json:
    limit = page_limit(call.body, 100, 1000, required=True)
    need_int(call.body, "status_filter", (0, 1, 2, 3), default=0)
    owners = opt_list(opt_obj(call.body, "owner_filter") or {}, "userid_list", max_len=100)
    chats = [g for g in world.groups.values()
             if not g.dismissed and (not owners or g.owner in owners)]
    start = cursor_index(call.body)
    page = chats[start:start + limit]
    more = start + limit < len(chats)
    return {"group_chat_list": [{"chat_id": g.chat_id, "status": 0} for g in page],
            "next_cursor": str(start + limit) if more else ""}


def groupchat_get(world: World, call: Call) -> Json:
    group = live_group(world, need_str(call.body, "chat_id"))
    need_name = call.body.get("need_name") == 1
    members = [_member_json(world, m, need_name) for m in group.members.values()]
    return {"group_chat": {
        "chat_id": group.chat_id, "name": group.name, "owner": group.owner,
        "create_time": group.create_time, "notice": group.notice, "member_list": members,
        "admin_list": [], "member_version": member_version(group)}}


# A customer's 群昵称, as shop owners set theirs: region, business, shop. Derived from their id,
# so the same customer has the same nickname in every group and every run.
NICK_REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
NICK_KINDS = ("实体店", "便利店", "网店", "微商", "批发", "超市")
NICK_SHOPS = ("张记", "李记", "王记", "陈记", "刘记", "杨记", "黄记", "赵记", "周记", "吴记",
              "徐记", "孙记", "胡记", "朱记", "高记", "林记")


def group_nickname(userid: str) -> str:
    """A customer's stable Chinese group nickname, e.g. 华东-实体店-张记."""
    n = int.from_bytes(hashlib.sha256(userid.encode()).digest()[:8], "big")
    region, n = NICK_REGIONS[n % len(NICK_REGIONS)], n // len(NICK_REGIONS)
    kind, n = NICK_KINDS[n % len(NICK_KINDS)], n // len(NICK_KINDS)
    return f"{region}-{kind}-{NICK_SHOPS[n % len(NICK_SHOPS)]}"


def _member_json(world: World, member: GroupMember, need_name: bool) -> Json:
    nickname = group_nickname(member.userid) if member.type == 2 else ""
    data: Json = {"userid": member.userid, "type": member.type, "join_time": member.join_time,
                  "join_scene": member.join_scene, "group_nickname": nickname}
    if member.invitor:
        data["invitor"] = {"userid": member.invitor}
    if member.state:
        data["state"] = member.state
    if need_name:
        customer = world.customers.get(member.userid)
        data["name"] = customer.name if customer else member.userid
    return data


# --- APIs: join ways (加入群聊) -----------------------------------------------------------------

JOIN_FIELDS = ("scene", "remark", "auto_create_room", "room_base_name", "room_base_id",
               "chat_id_list", "state", "mark_source")


def _checked_join_way(world: World, body: Json) -> Json:
    way = {"auto_create_room": 1, **{k: body[k] for k in JOIN_FIELDS if k in body}}
    need_int(way, "scene", (1, 2))
    need_int(way, "auto_create_room", (0, 1))
    opt_str(way, "remark", max_chars=30)
    opt_str(way, "room_base_name", max_chars=40)
    opt_str(way, "state", max_chars=30)
    for chat_id in need_list(way, "chat_id_list", max_len=5):
        live_group(world, chat_id)
    return way


def _join_way(world: World, body: Json) -> Json:
    config_id = need_str(body, "config_id")
    if config_id not in world.join_ways:
        raise Reject(INVALID, "invalid config_id")
    return world.join_ways[config_id]


def add_join_way(world: World, call: Call) -> Json:
    way = _checked_join_way(world, call.body)
    way["config_id"] = world.new_id("jwSim", 24)
    way["qr_code"] = f"https://wework.qpic.cn/wwpic/sim/{way['config_id']}/0"
    world.join_ways[way["config_id"]] = way
    return {"config_id": way["config_id"]}


def get_join_way(world: World, call: Call) -> Json:
    return {"join_way": dict(_join_way(world, call.body))}


def update_join_way(world: World, call: Call) -> Json:
    way = _join_way(world, call.body)
    way.update(_checked_join_way(world, {**way, **call.body}))
    return {}


def del_join_way(world: World, call: Call) -> Json:
    del world.join_ways[_join_way(world, call.body)["config_id"]]
    return {}


# --- APIs: group welcome templates -------------------------------------------------------------

TEMPLATE_ATTACHMENTS = ("image", "link", "miniprogram", "file", "video")


def _checked_template(world: World, body: Json) -> Json:
    text = check_text(body, 3000)
    template: Json = {"text": text} if text else {}
    for kind in TEMPLATE_ATTACHMENTS:
        if opt_obj(body, kind) is not None:
            template[kind] = check_attachment_object(world, kind, body[kind])
    if not template:
        raise Reject(INVALID, "text and attachments are all empty")
    return template


def _template_id(world: World, body: Json) -> str:
    template_id = need_str(body, "template_id")
    if template_id not in world.welcome_templates:
        raise Reject(INVALID, "invalid template_id")
    return template_id


def add_welcome_template(world: World, call: Call) -> Json:
    template = _checked_template(world, call.body)
    if len(world.welcome_templates) >= TEMPLATE_CAP:
        raise Reject(41055, f"the corp has {TEMPLATE_CAP} group welcome templates")
    template_id = world.new_id("msgSim", 16)
    world.welcome_templates[template_id] = template
    return {"template_id": template_id}


def edit_welcome_template(world: World, call: Call) -> Json:
    template_id = _template_id(world, call.body)
    world.welcome_templates[template_id] = _checked_template(world, call.body)
    return {}


def get_welcome_template(world: World, call: Call) -> Json:
    return dict(world.welcome_templates[_template_id(world, call.body)])


def del_welcome_template(world: World, call: Call) -> Json:
    del world.welcome_templates[_template_id(world, call.body)]
    return {}
