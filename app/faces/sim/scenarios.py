"""POST /sim/scenarios/*: things people do in WeChat / the WeCom client, each followed by the
real encrypted callback(s) WeCom sends to the bot URL.

By default the answer waits for delivery and carries the callback records (attempts, outcome,
decrypted passive reply); `"wait": false` sends in the background and answers at once.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.faces.sim import archive, contacts, groups, kf, masssend, payloads
from app.faces.sim.core import Sim
from app.faces.sim.state import ScenarioError

router = APIRouter(prefix="/sim/scenarios")
APP_MSG_ID_BASE = 7_300_000_000_000_000_000  # MsgIds are 64-bit integers of 19 digits


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: bool = True


class FriendAdd(Scenario):
    # Without userid: a scan of the 联系我 code named by config_id, or else by state (the
    # code's staff member is added and its state comes with the callback).
    userid: str | None = Field(None, min_length=1)
    config_id: str | None = None
    external_userid: str | None = None
    state: str = Field("", max_length=30)
    name: str | None = None
    welcome_code: bool = True  # false: as when an admin-configured welcome exists

    @model_validator(mode="after")
    def _whom(self) -> FriendAdd:
        if self.userid is None and not (self.config_id or self.state):
            raise ValueError("give userid, or the code scanned (config_id or state)")
        return self


class FriendDelete(Scenario):
    userid: str = Field(min_length=1)
    external_userid: str = Field(min_length=1)
    by: Literal["customer", "staff"] = "customer"


class AppText(Scenario):
    from_user: str = Field(min_length=1)
    content: str


class KfMessage(Scenario):
    open_kfid: str = Field(min_length=1)
    external_userid: str = Field(min_length=1)
    text: str = ""
    menu_id: str | None = None


class KfImage(Scenario):
    open_kfid: str = Field(min_length=1)
    external_userid: str = Field(min_length=1)
    # The picture's bytes, base64; by default a small JPEG.
    content_base64: str = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
                                           ).decode()
    filename: str = "photo.jpg"


class KfEnterSession(Scenario):
    open_kfid: str = Field(min_length=1)
    external_userid: str = Field(min_length=1)
    scene: str = ""
    scene_param: str = ""


class GroupCreate(Scenario):
    owner: str = Field(min_length=1)
    chat_id: str | None = None
    name: str | None = None
    members: list[str] = []


class GroupDismiss(Scenario):
    chat_id: str = Field(min_length=1)


class GroupChange(Scenario):
    chat_id: str | None = None
    external_userid: str | None = None
    ids: list[str] = []  # several members in one event (MemChangeCnt > 1)

    def members(self) -> list[str]:
        return [*([self.external_userid] if self.external_userid else []), *self.ids]

    @model_validator(mode="after")
    def _someone(self) -> GroupChange:
        if not self.members():
            raise ValueError("give external_userid or ids")
        return self


class GroupJoin(GroupChange):
    config_id: str | None = None  # join through a 加入群聊 QR code instead of a chat_id
    join_scene: Literal[0, 3] = 3
    state: str = ""


class GroupQuit(GroupChange):
    chat_id: str = Field(min_length=1)
    quit_scene: Literal[0, 1] = 0


class ConfirmMassTask(Scenario):
    msgid: str = Field(min_length=1)
    userid: str = Field(min_length=1)


class GroupPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_id: str = Field(min_length=1)
    sender: str = Field(min_length=1)  # a staff member's userid or a customer's external_userid
    text: str = Field(min_length=1)
    at: float | None = None  # epoch seconds, not after the simulator's now; default now
    msgid: str | None = Field(None, min_length=1, max_length=64)


class GroupMessage(Scenario, GroupPost):
    pass


class GroupMessages(Scenario):
    messages: list[GroupPost] = Field(min_length=1, max_length=5000)


class GroupRecall(Scenario):
    msgid: str = Field(min_length=1)
    by: str | None = None  # default: the sender (within 2 minutes); or the group's owner
    at: float | None = None


class ArchivePoison(Scenario):
    # Not base64 of JSON: what makes the SDK's DecryptData abort.
    encrypt_chat_msg: str = "\x00not base64 {\"msgid\": }"
    msgid: str | None = Field(None, min_length=1, max_length=64)


class RawCallback(Scenario):
    plaintext: str = Field(min_length=1)
    kind: str = "raw"
    agent_id: int | None = None


def _sim(request: Request) -> Sim:
    return request.app.state.sim


async def _deliver(sim: Sim, wait: bool, **result: Any) -> dict[str, Any]:
    pending = sim.world.take_callbacks()
    if wait:
        records = [await sim.callbacks.send(p) for p in pending]
    else:
        records = [sim.callbacks.send_background(p) for p in pending]
    return {**result, "callbacks": records}


def scenario_error(_request: Request, exc: Exception) -> JSONResponse:
    status = exc.status if isinstance(exc, ScenarioError) else 400
    return JSONResponse({"error": str(exc)}, status)


@router.post("/friend_add")
async def friend_add(request: Request, body: FriendAdd) -> dict[str, Any]:
    sim = _sim(request)
    userid, state = body.userid, body.state
    if userid is None:
        userid, state = contacts.scan_contact_way(sim.world, body.config_id, body.state)
    follow, code = contacts.friend_add(sim.world, userid, body.external_userid, state,
                                       body.name, body.welcome_code)
    return await _deliver(sim, body.wait, external_userid=follow.external_userid,
                          welcome_code=code, userid=userid, state=state)


@router.post("/friend_delete")
async def friend_delete(request: Request, body: FriendDelete) -> dict[str, Any]:
    sim = _sim(request)
    contacts.friend_delete(sim.world, body.userid, body.external_userid, body.by)
    return await _deliver(sim, body.wait)


@router.post("/app_text")
async def app_text(request: Request, body: AppText) -> dict[str, Any]:
    """A member texts the app; the bot may answer with an encrypted passive reply."""
    sim = _sim(request)
    world = sim.world
    world.members.add(body.from_user)
    msg_id = APP_MSG_ID_BASE + int(world.new_id(""))
    agent_id = world.settings.agent_id
    world.queue_callback("text", payloads.app_text(
        world.settings.corp_id, world.now_s(), body.from_user, body.content, msg_id, agent_id),
        agent_id=agent_id)
    result = await _deliver(sim, body.wait, msg_id=str(msg_id))
    result["reply"] = result["callbacks"][0]["reply"]
    return result


@router.post("/kf_message")
async def kf_message(request: Request, body: KfMessage) -> dict[str, Any]:
    sim = _sim(request)
    entry = kf.customer_message(sim.world, body.open_kfid, body.external_userid, body.text,
                                body.menu_id)
    return await _deliver(sim, body.wait, msgid=entry["msgid"])


@router.post("/kf_image")
async def kf_image(request: Request, body: KfImage) -> dict[str, Any]:
    sim = _sim(request)
    try:
        content = base64.b64decode(body.content_base64, validate=True)
    except ValueError:
        raise ScenarioError("content_base64 is not base64", 422) from None
    entry = kf.customer_image(sim.world, body.open_kfid, body.external_userid, content,
                              body.filename)
    return await _deliver(sim, body.wait, msgid=entry["msgid"],
                          media_id=entry["image"]["media_id"])


@router.post("/kf_enter_session")
async def kf_enter_session(request: Request, body: KfEnterSession) -> dict[str, Any]:
    sim = _sim(request)
    entry = kf.enter_session(sim.world, body.open_kfid, body.external_userid, body.scene,
                             body.scene_param)
    return await _deliver(sim, body.wait, msgid=entry["msgid"],
                          welcome_code=entry["event"].get("welcome_code"))


@router.post("/group_create")
async def group_create(request: Request, body: GroupCreate) -> dict[str, Any]:
    sim = _sim(request)
    group = groups.group_create(sim.world, body.owner, body.chat_id, body.name, body.members)
    return await _deliver(sim, body.wait, chat_id=group.chat_id)


@router.post("/group_dismiss")
async def group_dismiss(request: Request, body: GroupDismiss) -> dict[str, Any]:
    sim = _sim(request)
    groups.group_dismiss(sim.world, body.chat_id)
    return await _deliver(sim, body.wait, chat_id=body.chat_id)


@router.post("/group_join")
async def group_join(request: Request, body: GroupJoin) -> dict[str, Any]:
    sim = _sim(request)
    if not (body.chat_id or body.config_id):
        raise ScenarioError("give chat_id or config_id")
    group = groups.group_join(sim.world, body.members(), body.chat_id, body.config_id,
                              body.join_scene, body.state)
    return await _deliver(sim, body.wait, chat_id=group.chat_id,
                          member_version=groups.member_version(group))


@router.post("/group_quit")
async def group_quit(request: Request, body: GroupQuit) -> dict[str, Any]:
    sim = _sim(request)
    group = groups.group_quit(sim.world, body.chat_id, body.members(), body.quit_scene)
    return await _deliver(sim, body.wait, chat_id=group.chat_id,
                          member_version=groups.member_version(group))


@router.post("/confirm_mass_task")
async def confirm_mass_task(request: Request, body: ConfirmMassTask) -> dict[str, Any]:
    """The member confirms a mass-send task in the client; WeCom sends no callback for it."""
    task = masssend.confirm_mass_task(_sim(request).world, body.msgid, body.userid)
    return {"msgid": body.msgid, "userid": task.userid, "status": task.status,
            "results": task.results, "callbacks": []}


@router.post("/group_message")
async def group_message(request: Request, body: GroupMessage) -> dict[str, Any]:
    """Someone in a customer group posts a text; the archive gets it, WeCom says so."""
    sim = _sim(request)
    record = archive.post_text(sim.world, body.chat_id, body.sender, body.text, body.at,
                               body.msgid)
    archive.notify(sim.world)
    return await _deliver(sim, body.wait, seq=record.seq, msgid=record.msgid)


@router.post("/group_messages")
async def group_messages(request: Request, body: GroupMessages) -> dict[str, Any]:
    """Several posts (in the order given) and one msgaudit_notify; all or none of them."""
    sim = _sim(request)
    world = sim.world
    before = len(world.archive)
    try:
        records = [archive.post_text(world, m.chat_id, m.sender, m.text, m.at, m.msgid)
                   for m in body.messages]
    except ScenarioError:
        for record in world.archive[before:]:
            del world.archived[record.msgid]
        del world.archive[before:]
        raise
    archive.notify(world)
    return await _deliver(sim, body.wait, seqs=[r.seq for r in records],
                          msgids=[r.msgid for r in records])


@router.post("/group_recall")
async def group_recall(request: Request, body: GroupRecall) -> dict[str, Any]:
    """A group message is recalled (撤回); the archive gets the recall record."""
    sim = _sim(request)
    record = archive.recall(sim.world, body.msgid, body.by, body.at)
    archive.notify(sim.world)
    return await _deliver(sim, body.wait, seq=record.seq, msgid=record.msgid)


@router.post("/archive_poison")
async def archive_poison(request: Request, body: ArchivePoison) -> dict[str, Any]:
    """A malformed record in the archive (served as given), and the event announcing it."""
    sim = _sim(request)
    record = archive.poison(sim.world, body.encrypt_chat_msg, body.msgid)
    archive.notify(sim.world)
    return await _deliver(sim, body.wait, seq=record.seq, msgid=record.msgid)


@router.post("/raw_callback")
async def raw_callback(request: Request, body: RawCallback) -> dict[str, Any]:
    """Any plaintext, encrypted and delivered like the others (for payloads not modelled)."""
    sim = _sim(request)
    sim.world.queue_callback(body.kind, body.plaintext, body.agent_id)
    return await _deliver(sim, body.wait)
