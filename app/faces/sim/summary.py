"""GET /sim/state: a JSON picture of the world for tests and people (no secrets in it)."""

from __future__ import annotations

from typing import Any

from app.faces.sim import groups as group_rules
from app.faces.sim.contacts import WELCOME_WINDOW_S
from app.faces.sim.state import Json, World


def summary(world: World) -> Json:
    return {
        "now": world.now(),
        "corp_id": world.settings.corp_id,
        "members": sorted(world.members),
        "tokens": _tokens(world),
        "contacts": [_follow(world, f) for f in world.follows.values()],
        "welcome_codes": _welcome_codes(world),
        "tags": [{"group_id": g.group_id, "group_name": g.group_name,
                  "tags": [{"id": t, "name": world.tags[t].name} for t in g.tag_ids]}
                 for g in world.tag_groups.values()],
        "contact_ways": list(world.contact_ways.values()),
        "join_ways": list(world.join_ways.values()),
        "groups": [_group(g) for g in world.groups.values()],
        "mass_messages": [_mass(m) for m in world.mass.values()],
        "group_welcome_templates": world.welcome_templates,
        "kf": _kf(world),
        "app_messages": world.app_messages,
        "robots": [{"key_hint": r.key[:4] + "***", "sent": r.sent} for r in world.robots.values()],
        "appchats": list(world.appchats.values()),
        "media": [vars(m) for m in world.media.values()],
        "archive": {"records": len(world.archive),
                    "poisoned": sum(r.message is None for r in world.archive)},
    }


def _tokens(world: World) -> Json:
    now = world.now()
    live = [t for t in world.tokens.values() if t.rejected_with is None and now < t.expires_at]
    # Token values are credentials of the simulated corp: only counts leave the simulator.
    return {"issued": len(world.tokens), "live": len(live),
            "by_app": sorted({t.app for t in live})}


def _follow(world: World, follow: Any) -> Json:
    customer = world.customers.get(follow.external_userid)
    return {"userid": follow.userid, "external_userid": follow.external_userid,
            "name": customer.name if customer else "", "state": follow.state,
            "createtime": follow.createtime, "tags": sorted(follow.tags)}


def _welcome_codes(world: World) -> Json:
    now = world.now()

    def status(code: Any) -> str:
        if code.used_at is not None:
            return "used"
        return "expired" if now > code.issued_at + WELCOME_WINDOW_S else "pending"

    codes = [{"code": c.code, "userid": c.userid, "external_userid": c.external_userid,
              "issued_at": c.issued_at, "status": status(c), "sent": c.sent}
             for c in world.welcome_codes.values()]
    counts = {s: sum(1 for c in codes if c["status"] == s) for s in ("pending", "used",
                                                                     "expired")}
    return {**counts, "codes": codes}


def _group(group: Any) -> Json:
    return {"chat_id": group.chat_id, "name": group.name, "owner": group.owner,
            "dismissed": group.dismissed, "member_count": len(group.members),
            "members": list(group.members), "member_version": group_rules.member_version(group),
            "mass_days": sorted(str(d) for d in group.mass_days)}


def _mass(msg: Any) -> Json:
    return {"msgid": msg.msgid, "chat_type": msg.chat_type, "create_time": msg.create_time,
            "text": msg.text, "attachments": msg.attachments, "cancelled": msg.cancelled,
            "reminders": len(msg.reminders),
            "tasks": [{"userid": t.userid, "status": t.status, "targets": t.targets,
                       "results": t.results, "send_time": t.send_time}
                      for t in msg.tasks.values()]}


def _kf(world: World) -> Json:
    return {"accounts": sorted(world.kf_accounts),
            "sessions": [vars(s) for s in world.kf_sessions.values()],
            "messages": len(world.kf_log), "sent": world.kf_sent}
