"""The WeCom API under /cgi-bin/: route table and dispatcher.

WeCom's conventions: HTTP 200 and JSON {errcode, errmsg} for every outcome, an access_token
query parameter on every call but gettoken and the robot webhook, UTF-8 JSON bodies. Only
injected faults break these rules.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app.faces.sim import archive, contacts, groups, kf, masssend, messages, tokens
from app.faces.sim.core import Sim
from app.faces.sim.faults import Fault, drop_connection
from app.faces.sim.multipart import MultipartError, read_upload
from app.faces.sim.state import Binary, Call, Json, Reject, World

router = APIRouter()
Handler = Callable[[World, Call], Json | Binary]


@dataclass(frozen=True)
class Api:
    method: str
    handler: Handler
    needs_token: bool = True
    scope: str | None = None  # the one app whose token serves it (None: any but the archive)


def _post(handler: Handler) -> Api:
    return Api("POST", handler)


def _archive(handler: Handler) -> Api:
    return Api("POST", handler, scope=archive.APP)


EC = "externalcontact/"
ROUTES: dict[str, Api] = {
    "gettoken": Api("GET", lambda w, c: tokens.gettoken(w, c.query), needs_token=False),
    "message/send": _post(messages.message_send),
    "media/upload": _post(messages.media_upload),
    "media/get": Api("GET", messages.media_get),
    "webhook/send": Api("POST", messages.webhook_send, needs_token=False),
    "appchat/create": _post(messages.appchat_create),
    "appchat/send": _post(messages.appchat_send),
    EC + "get": Api("GET", contacts.get_external_contact),
    EC + "send_welcome_msg": _post(contacts.send_welcome_msg),
    EC + "mark_tag": _post(contacts.mark_tag),
    EC + "get_corp_tag_list": _post(contacts.get_corp_tag_list),
    EC + "add_corp_tag": _post(contacts.add_corp_tag),
    EC + "add_contact_way": _post(contacts.add_contact_way),
    EC + "get_contact_way": _post(contacts.get_contact_way),
    EC + "update_contact_way": _post(contacts.update_contact_way),
    EC + "del_contact_way": _post(contacts.del_contact_way),
    EC + "list_contact_way": _post(contacts.list_contact_way),
    EC + "groupchat/list": _post(groups.groupchat_list),
    EC + "groupchat/get": _post(groups.groupchat_get),
    EC + "groupchat/statistic": _post(archive.groupchat_statistic),
    EC + "groupchat/statistic_group_by_day": _post(archive.groupchat_statistic_group_by_day),
    EC + "groupchat/add_join_way": _post(groups.add_join_way),
    EC + "groupchat/get_join_way": _post(groups.get_join_way),
    EC + "groupchat/update_join_way": _post(groups.update_join_way),
    EC + "groupchat/del_join_way": _post(groups.del_join_way),
    EC + "group_welcome_template/add": _post(groups.add_welcome_template),
    EC + "group_welcome_template/edit": _post(groups.edit_welcome_template),
    EC + "group_welcome_template/get": _post(groups.get_welcome_template),
    EC + "group_welcome_template/del": _post(groups.del_welcome_template),
    EC + "add_msg_template": _post(masssend.add_msg_template),
    EC + "get_groupmsg_task": _post(masssend.get_groupmsg_task),
    EC + "get_groupmsg_send_result": _post(masssend.get_groupmsg_send_result),
    EC + "remind_groupmsg_send": _post(masssend.remind_groupmsg_send),
    EC + "get_groupmsg_list_v2": _post(masssend.get_groupmsg_list_v2),
    EC + "cancel_groupmsg_send": _post(masssend.cancel_groupmsg_send),
    "kf/sync_msg": _post(kf.sync_msg),
    "kf/send_msg": _post(kf.send_msg),
    "kf/send_msg_on_event": _post(kf.send_msg_on_event),
    "kf/service_state/get": _post(kf.service_state_get),
    "kf/service_state/trans": _post(kf.service_state_trans),
    # The archive's: sim_getchatdata stands in for the SDK's GetChatData (archive.py).
    "msgaudit/sim_getchatdata": _archive(archive.sim_getchatdata),
    "msgaudit/get_permit_user_list": _archive(archive.get_permit_user_list),
}


def answer(sim: Sim, entry: dict[str, Any], errcode: int, payload: Json | None = None,
           reason: str = "") -> JSONResponse:
    entry["errcode"] = errcode
    errmsg = "ok" if errcode == 0 else _errmsg(sim, entry, errcode, reason)
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **(payload or {})})


def _errmsg(sim: Sim, entry: dict[str, Any], errcode: int, reason: str) -> str:
    # WeCom's errmsg shape: reason, a hint id, and the error-query link.
    hint = f"{int(sim.clock.now())}-sim-{entry['seq']}"
    return (f"{reason or 'error'}, hint: [{hint}], more info at "
            f"https://open.work.weixin.qq.com/devtool/query?e={errcode}")


@router.api_route("/cgi-bin/{api:path}", methods=["GET", "POST"])
async def cgi(api: str, request: Request) -> Response:
    sim: Sim = request.app.state.sim
    query = dict(request.query_params)
    entry = sim.requests.start(sim.clock.now(), request.method, api, query)
    raw = await request.body()
    call, problem = _read_call(request, query, raw, entry)
    fault = sim.faults.draw(api)
    if fault is not None:
        entry["fault"] = fault.describe()
        early = await _fault_before(sim, request, entry, fault)
        if early is not None:
            return early
        call.empty_page = fault.spec.empty_page
    response = _serve(sim, api, request.method, call, problem, entry)
    sim.dispatch_callbacks()
    if fault is not None and fault.spec.after:
        return await _fault_response(request, entry, fault)
    return response


def _read_call(request: Request, query: dict[str, str], raw: bytes,
               entry: dict[str, Any]) -> tuple[Call, Reject | None]:
    """Parse the body once, record it, and remember (not raise) a parse problem: WeCom checks
    the token before it complains about the body."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            upload = read_upload(content_type, raw, "media")
            entry["upload"] = upload and {"filename": upload.filename,
                                          "content_type": upload.content_type,
                                          "size": len(upload.data)}
            return Call(query, {}, upload), None
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (ValueError, MultipartError):
        entry["body"] = raw[:2000].decode("utf-8", "replace")
        return Call(query, {}), Reject(47001, "data format error: body is not UTF-8 JSON")
    entry["body"] = body
    if not isinstance(body, dict):
        return Call(query, {}), Reject(47001, "data format error: body is not a JSON object")
    return Call(query, body), None


def _serve(sim: Sim, api: str, method: str, call: Call, problem: Reject | None,
           entry: dict[str, Any]) -> Response:
    route = ROUTES.get(api)
    if route is None:
        # Deliberately loud: a bot calling an API the simulator lacks is a test failure.
        entry["errcode"], entry["http_status"] = 404, 404
        return JSONResponse({"errcode": 404, "errmsg": f"sim: unknown API {api}"}, 404)
    try:
        if method != route.method:
            raise Reject(43001 if route.method == "GET" else 43002,
                         f"{route.method} request required")
        if route.needs_token:
            token = tokens.check_token(sim.world, call.query.get("access_token"))
            if (token.app == archive.APP) != (route.scope == archive.APP):
                raise Reject(48002, "api forbidden: not this secret's API")
        if problem is not None:
            raise problem
        result = route.handler(sim.world, call)
        if isinstance(result, Binary):
            entry["errcode"] = 0
            return Response(result.content, media_type=result.content_type, headers={
                "Content-Disposition": f'attachment; filename="{result.filename}"'})
        return answer(sim, entry, 0, result)
    except Reject as exc:
        return answer(sim, entry, exc.errcode, reason=exc.reason)


async def _fault_before(sim: Sim, request: Request, entry: dict[str, Any],
                        fault: Fault) -> Response | None:
    """Apply the parts of a fault that come before the call; a response ends the call."""
    if fault.spec.delay_s:
        await asyncio.sleep(fault.spec.delay_s)
    if fault.spec.errcode is not None:
        return answer(sim, entry, fault.spec.errcode, reason="sim fault")
    if fault.spec.after or not (fault.spec.drop or fault.spec.http_status):
        return None
    return await _fault_response(request, entry, fault)


async def _fault_response(request: Request, entry: dict[str, Any], fault: Fault) -> Response:
    if fault.spec.drop:
        entry["http_status"] = None
        await drop_connection(request)
        return Response(status_code=204)  # never sent: the connection is gone
    status = fault.spec.http_status or 502
    entry["http_status"] = status
    # What a gateway in front of WeCom answers: not JSON.
    return PlainTextResponse(f"<html><body><h1>{status}</h1></body></html>", status,
                             media_type="text/html")
