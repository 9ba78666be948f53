"""The base of every typed WeCom API call, and the message bodies several APIs share.

An `ApiCall` is a request: its fields are the JSON body (or the GET query), its ClassVars say
where it goes (`path`), with which secret's token, and whether WeCom drops a resent copy
(`dedupes`). Each call names its answer type (`response_model`, an `ApiResponse`). The outbox
stores `call.stored()` and rebuilds the call with `API_CALLS[path].model_validate(stored)`.

Field names are WeCom's JSON names. Request models forbid unknown fields (a typo must not be
dropped silently); response models allow them (WeCom adds fields over time). Limits that are
cheap to check are validated at construction, so a bad request fails where it is built, with a
`pydantic.ValidationError`, instead of as an errcode later in the sender.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ATTACHMENTS = 9


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def check_bytes(label: str, text: str | None, limit: int) -> None:
    """WeCom counts most text limits in UTF-8 bytes (a Chinese character is 3)."""
    if text is not None and utf8_len(text) > limit:
        raise ValueError(f"{label} is {utf8_len(text)} bytes in UTF-8; WeCom allows {limit}")


def require_body(model: BaseModel, msgtype: str) -> None:
    """The object named by `msgtype` must be present: WeCom rejects a message without it."""
    if getattr(model, msgtype, None) is None:
        raise ValueError(f"msgtype is {msgtype!r} but the {msgtype!r} object is missing")


class ApiResponse(BaseModel):
    """Any WeCom answer: errcode 0 and "ok" on success; fields WeCom adds are kept."""

    model_config = ConfigDict(extra="allow")

    errcode: int = 0
    errmsg: str = ""


R = TypeVar("R", bound=ApiResponse)


class ApiCall(BaseModel, Generic[R]):
    """A typed request to one WeCom server API (the part of the URL after /cgi-bin/)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: ClassVar[str]
    method: ClassVar[str] = "POST"
    # Whose access token: "agent" (the app), "contact" (客户联系), "kf" (微信客服), or None
    # for the group robot webhook, which authenticates with its key instead.
    secret: ClassVar[str | None] = "agent"
    # True when resending after a lost answer is harmless: WeCom itself drops the second
    # copy, or the call only reads.
    dedupes: ClassVar[bool] = False
    # Errcodes that, after an attempt whose answer was lost, say that attempt took effect
    # (a single-use code already used): the outbox records the row as sent.
    done_already: ClassVar[frozenset[int]] = frozenset()
    # How long after the row was made a copy still gets an answer that tells (the life of the
    # single-use code behind done_already); None: as long as WeCom remembers the first copy.
    code_life: ClassVar[timedelta | None] = None
    # Errcodes saying the code is past its life: after an attempt whose answer was lost, nobody
    # can tell any more whether that attempt took effect.
    code_gone: ClassVar[frozenset[int]] = frozenset()
    response_model: ClassVar[type[ApiResponse]] = ApiResponse

    def is_dedupable(self) -> bool:
        """Whether this request may be sent again after OutcomeUnknown."""
        return self.dedupes

    def dedupe_window(self) -> timedelta | None:
        """How long after a first copy WeCom still drops a second; None: for ever."""
        return None

    def stored(self) -> dict[str, Any]:
        """Every field, as JSON: what the outbox keeps to rebuild the call later."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    def query(self) -> dict[str, str]:
        """GET parameters (the access token is added by the client)."""
        if self.method != "GET":
            return {}
        return {key: str(value) for key, value in self.stored().items()}

    def body(self) -> dict[str, Any] | None:
        """The POST JSON body; None for GET."""
        return None if self.method == "GET" else self.stored()


class Body(BaseModel):
    """A nested request object: unknown fields are a bug, as on the request itself."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Info(BaseModel):
    """A nested object of an answer: permissive, like ApiResponse."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- message bodies shared by several APIs ---------------------------------------------------


class Text(Body):
    content: str


class MediaRef(Body):
    """voice / file / video bodies: a media_id from media/upload (valid 3 days)."""

    media_id: str


class Image(Body):
    """media_id, or pic_url from media/uploadimg; WeCom uses media_id when both are given."""

    media_id: str | None = None
    pic_url: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Image:
        if not self.media_id and not self.pic_url:
            raise ValueError("an image needs media_id or pic_url")
        return self


class Link(Body):
    title: str
    url: str
    picurl: str | None = None
    desc: str | None = None

    @model_validator(mode="after")
    def _limits(self) -> Link:
        check_bytes("link.title", self.title, 128)
        check_bytes("link.desc", self.desc, 512)
        check_bytes("link.url", self.url, 2048)
        check_bytes("link.picurl", self.picurl, 2048)
        return self


class MiniProgram(Body):
    title: str
    pic_media_id: str
    appid: str
    page: str

    @model_validator(mode="after")
    def _limits(self) -> MiniProgram:
        check_bytes("miniprogram.title", self.title, 64)
        return self


class Attachment(Body):
    """One attachment of a welcome message, mass send or closing message (reference §5.3)."""

    msgtype: Literal["image", "link", "miniprogram", "video", "file"]
    image: Image | None = None
    link: Link | None = None
    miniprogram: MiniProgram | None = None
    video: MediaRef | None = None
    file: MediaRef | None = None

    @model_validator(mode="after")
    def _matching_object(self) -> Attachment:
        require_body(self, self.msgtype)
        return self


def check_text_and_attachments(text: Text | None, attachments: list[Attachment] | None,
                               limit: int) -> None:
    """Welcome and mass-send rules: text ≤ limit bytes, ≤9 attachments, not both empty."""
    if text is None and not attachments:
        raise ValueError("text and attachments cannot both be empty")
    check_bytes("text.content", text.content if text else None, limit)
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        raise ValueError(f"{len(attachments)} attachments; WeCom allows {MAX_ATTACHMENTS}")


# The 联系我 / 加入群聊 `state` (the channel routing key) and remarks: ≤30 characters.
ShortText = Annotated[str, Field(max_length=30)]
