"""The decrypted callback plaintexts the simulator sends (wecom-reference §4).

Strings go in CDATA, numbers bare, tags in the documented order; optional tags are left out
rather than sent empty, as WeCom does.
"""

from __future__ import annotations

from typing import Any

from app.engine.wecom.xmlutil import build_xml


def _xml(fields: dict[str, Any]) -> str:
    return build_xml({tag: value for tag, value in fields.items() if value is not None})


def _system(corp_id: str, now: int, event: str) -> dict[str, Any]:
    # Customer-contact events come from "sys", never from a member.
    return {"ToUserName": corp_id, "FromUserName": "sys", "CreateTime": now,
            "MsgType": "event", "Event": event}


def external_contact(corp_id: str, now: int, change_type: str, userid: str,
                     external_userid: str, state: str | None = None,
                     welcome_code: str | None = None, source: str | None = None) -> str:
    """change_external_contact (§4.4): add_external_contact, del_external_contact, ..."""
    fields = _system(corp_id, now, "change_external_contact")
    fields.update(ChangeType=change_type, UserID=userid, ExternalUserID=external_userid,
                  State=state or None, WelcomeCode=welcome_code, Source=source)
    return _xml(fields)


def external_chat(corp_id: str, now: int, chat_id: str, change_type: str,
                  **update: Any) -> str:
    """change_external_chat (§4.5); `update` holds UpdateDetail, JoinScene, MemChangeList, ..."""
    fields = _system(corp_id, now, "change_external_chat")
    fields.update(ChatId=chat_id, ChangeType=change_type, **update)
    return _xml(fields)


def member_update(detail: str, ids: list[str], scene: int, last_ver: str,
                  cur_ver: str) -> dict[str, Any]:
    """The update fields of an add_member / del_member event."""
    scene_tag = "JoinScene" if detail == "add_member" else "QuitScene"
    return {"UpdateDetail": detail, scene_tag: scene, "MemChangeCnt": len(ids),
            "MemChangeList": ids, "LastMemVer": last_ver, "CurMemVer": cur_ver}


def kf_msg_or_event(corp_id: str, now: int, token: str, open_kfid: str) -> str:
    """kf_msg_or_event (§4.7): no sender and no content, only the Token for kf/sync_msg."""
    return _xml({"ToUserName": corp_id, "CreateTime": now, "MsgType": "event",
                 "Event": "kf_msg_or_event", "Token": token, "OpenKfId": open_kfid})


def app_text(corp_id: str, now: int, from_user: str, content: str, msg_id: int,
             agent_id: int) -> str:
    """A member's text to the self-built app (§4.2)."""
    return _xml({"ToUserName": corp_id, "FromUserName": from_user, "CreateTime": now,
                 "MsgType": "text", "Content": content, "MsgId": msg_id,
                 "AgentID": agent_id})
