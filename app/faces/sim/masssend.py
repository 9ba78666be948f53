"""Enterprise mass send (§5.9): add_msg_template creates tasks; nothing is delivered until the
member confirms in the client (a scenario). Each customer and each customer group receives at
most one mass message per Asia/Shanghai day: later ones get send status 3.
"""

from __future__ import annotations

from datetime import date

from app.faces.sim.checks import (
    INVALID,
    cursor_index,
    need_int,
    need_str,
    opt_list,
    opt_obj,
    opt_str,
    page_limit,
)
from app.faces.sim.clock import shanghai_day
from app.faces.sim.contacts import require_member
from app.faces.sim.content import check_attachments, check_text
from app.faces.sim.state import (
    Call,
    Follow,
    Json,
    MassMessage,
    MassTask,
    Reject,
    ScenarioError,
    World,
)

REMINDERS_PER_DAY = 3
DAY_S = 24 * 3600
UNSENT, SENT, NOT_FRIEND, ALREADY_TODAY = 0, 1, 2, 3


def add_msg_template(world: World, call: Call) -> Json:
    body = call.body
    chat_type = body.get("chat_type", "single")
    if chat_type not in ("single", "group"):
        raise Reject(INVALID, "chat_type must be single or group")
    text, attachments = check_text(body, 4000), check_attachments(world, body)
    if not text and not attachments:
        raise Reject(INVALID, "text and attachments are both empty")
    sender = opt_str(body, "sender")
    if sender:
        require_member(world, sender)
    targets, fails = (_group_targets(world, body, sender) if chat_type == "group"
                      else _single_targets(world, body, sender))
    if not targets:
        raise Reject(41048, "no sendable customers")
    msg = MassMessage(world.new_id("msgSim", 16), chat_type, world.now_s(), text, attachments)
    msg.tasks = {userid: MassTask(userid, ids) for userid, ids in targets.items()}
    world.mass[msg.msgid] = msg
    return {"fail_list": fails, "msgid": msg.msgid}


def _group_targets(world: World, body: Json, sender: str) -> tuple[dict[str, list[str]],
                                                                   list[str]]:
    """Only the sender's own live groups can be targeted; the rest are failures."""
    if not sender:
        raise Reject(INVALID, "sender is required for chat_type group")
    chat_ids = opt_list(body, "chat_id_list", max_len=2000)
    owned = [g.chat_id for g in world.groups.values() if g.owner == sender and not g.dismissed]
    wanted = chat_ids or owned
    ok = [c for c in wanted if c in owned]
    return ({sender: ok} if ok else {}), [c for c in wanted if c not in owned]


def _single_targets(world: World, body: Json, sender: str) -> tuple[dict[str, list[str]],
                                                                    list[str]]:
    """Each customer goes to the member who added them last (or to the sender)."""
    ids = opt_list(body, "external_userid", max_len=10000)
    follows = [f for f in world.follows.values() if not sender or f.userid == sender]
    wanted = ids or sorted({f.external_userid for f in follows})
    tag_groups = _tag_filter(body)
    targets: dict[str, list[str]] = {}
    fails = []
    for external_userid in wanted:
        owner = _latest_follow(follows, external_userid)
        if owner is None:
            fails.append(external_userid)
        elif all(owner.tags & group for group in tag_groups):
            targets.setdefault(owner.userid, []).append(external_userid)
    return targets, fails


def _tag_filter(body: Json) -> list[set[str]]:
    """OR within a group, AND across groups."""
    groups = opt_list(opt_obj(body, "tag_filter") or {}, "group_list")
    return [set(opt_list(g, "tag_list", max_len=100)) for g in groups if isinstance(g, dict)]


def _latest_follow(follows: list[Follow], external_userid: str) -> Follow | None:
    mine = [f for f in follows if f.external_userid == external_userid]
    return max(mine, key=lambda f: f.createtime) if mine else None


def _message(world: World, body: Json) -> MassMessage:
    msgid = need_str(body, "msgid")
    if msgid not in world.mass:
        raise Reject(INVALID, "invalid msgid")
    return world.mass[msgid]


def get_groupmsg_task(world: World, call: Call) -> Json:
    msg = _message(world, call.body)
    tasks = list(msg.tasks.values())
    limit, start = page_limit(call.body, 500, 1000), cursor_index(call.body)
    page = [{"userid": t.userid, "status": 2 if t.status == "sent" else 0,
             "send_time": t.send_time} for t in tasks[start:start + limit]]
    return {"task_list": page, "next_cursor": _next(start, limit, len(tasks))}


def get_groupmsg_send_result(world: World, call: Call) -> Json:
    msg = _message(world, call.body)
    task = msg.tasks.get(need_str(call.body, "userid"))
    if task is None:
        raise Reject(INVALID, "no task of this userid for the msgid")
    key = "chat_id" if msg.chat_type == "group" else "external_userid"
    rows = [{key: target, "userid": task.userid, "status": task.results.get(target, UNSENT),
             **({"send_time": task.send_time} if task.results.get(target) == SENT else {})}
            for target in task.targets]
    limit, start = page_limit(call.body, 500, 1000), cursor_index(call.body)
    return {"send_list": rows[start:start + limit],
            "next_cursor": _next(start, limit, len(rows))}


def _next(start: int, limit: int, total: int) -> str:
    return str(start + limit) if start + limit < total else ""


def remind_groupmsg_send(world: World, call: Call) -> Json:
    """At most 3 reminders per task in any 24 h."""
    msg = _message(world, call.body)
    now = world.now()
    msg.reminders = [t for t in msg.reminders if now - t < DAY_S]
    if len(msg.reminders) >= REMINDERS_PER_DAY:
        raise Reject(45009, f"at most {REMINDERS_PER_DAY} reminders per 24 h")
    msg.reminders.append(now)
    return {}


def cancel_groupmsg_send(world: World, call: Call) -> Json:
    msg = _message(world, call.body)
    msg.cancelled = True
    for task in msg.tasks.values():
        if task.status == "unsent":
            task.status = "cancelled"
    return {}


def get_groupmsg_list_v2(world: World, call: Call) -> Json:
    body = call.body
    start_time, end_time = need_int(body, "start_time"), need_int(body, "end_time")
    if end_time < start_time or end_time - start_time > 31 * DAY_S:
        raise Reject(INVALID, "start_time..end_time must span at most one month")
    chat_type = body.get("chat_type", "single")
    creator = opt_str(body, "creator")
    found = [m for m in world.mass.values() if m.chat_type == chat_type
             and start_time <= m.create_time <= end_time and (not creator or creator in m.tasks)]
    limit, start = page_limit(body, 50, 100), cursor_index(body)
    rows = [{"msgid": m.msgid, "creator": "", "create_type": 0, "create_time": m.create_time,
             "text": m.text, "attachments": m.attachments} for m in found[start:start + limit]]
    return {"group_msg_list": rows, "next_cursor": _next(start, limit, len(found))}


# --- scenario: the member confirms in the client -----------------------------------------------


def confirm_mass_task(world: World, msgid: str, userid: str) -> MassTask:
    """Deliver the task now; a target that already got a mass message today gets status 3."""
    msg = world.mass.get(msgid)
    task = msg.tasks.get(userid) if msg else None
    if msg is None or task is None:
        raise ScenarioError(f"no task of {userid} for msgid {msgid}", 404)
    if task.status != "unsent":
        raise ScenarioError(f"the task is already {task.status}", 409)
    day = shanghai_day(world.now())
    for target in task.targets:
        task.results[target] = (_deliver_to_group(world, target, day) if msg.chat_type == "group"
                                else _deliver_to_customer(world, userid, target, day))
    task.status, task.send_time = "sent", world.now_s()
    return task


def _deliver_to_group(world: World, chat_id: str, day: date) -> int:
    group = world.groups.get(chat_id)
    if group is None or group.dismissed:
        return NOT_FRIEND
    if day in group.mass_days:
        return ALREADY_TODAY
    group.mass_days.add(day)
    return SENT


def _deliver_to_customer(world: World, userid: str, external_userid: str, day: date) -> int:
    if (userid, external_userid) not in world.follows:
        return NOT_FRIEND
    days = world.customer_mass_days.setdefault(external_userid, set())
    if day in days:
        return ALREADY_TODAY
    days.add(day)
    return SENT
