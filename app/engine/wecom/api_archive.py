"""The chat archive's (会话内容存档) server calls, `msgaudit/*` (wecom-reference §5.15): they take
the archive secret's token (secret scope "archive"; any other app's token gets 48002).

`SimGetChatData` is not a WeCom API: WeCom serves the archive only through the SDK's
GetChatData, whose wire protocol is closed. The built-in simulator answers it with the same
page GetChatData returns (app/faces/sim/archive.py), `encrypt_chat_msg` being the message JSON
in base64 and `publickey_ver` 0, so a reader can take its pages from either.
"""

from __future__ import annotations

from typing import ClassVar, Generic

from pydantic import Field

from app.engine.wecom.api_base import ApiCall, ApiResponse, Info, R

PAGE_MAX = 1000  # GetChatData's limit


class ArchiveCall(ApiCall[R], Generic[R]):
    """A msgaudit/* call: the archive secret's token."""

    secret: ClassVar[str | None] = "archive"


class ChatData(Info):
    """One archive record, still encrypted (what GetChatData returns per message)."""

    seq: int
    msgid: str
    publickey_ver: int = 0
    encrypt_random_key: str = ""
    encrypt_chat_msg: str = ""


class ChatDataPage(ApiResponse):
    chatdata: list[ChatData] = []  # seq ascending; empty: nothing after the cursor


class SimGetChatData(ArchiveCall[ChatDataPage]):
    """The records after `seq` (excluded), at most `limit`: the simulator's GetChatData."""

    path: ClassVar[str] = "msgaudit/sim_getchatdata"
    dedupes: ClassVar[bool] = True  # reading moves no server-side state: the cursor is ours
    response_model: ClassVar[type[ApiResponse]] = ChatDataPage

    seq: int = Field(ge=0)
    limit: int = Field(PAGE_MAX, ge=1, le=PAGE_MAX)
