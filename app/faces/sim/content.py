"""Message bodies shared by several APIs: attachments, app messages, kf and webhook messages.

Each validator raises Reject with the errcode WeCom documents for the broken limit and returns
what is recorded as "delivered".
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from app.faces.sim import checks
from app.faces.sim.checks import INVALID, need_str, opt_str
from app.faces.sim.state import Json, Reject, World

MEDIA_LIFETIME_S = 3 * 24 * 3600
ATTACHMENT_TYPES = ("image", "link", "miniprogram", "video", "file")
MEDIA_TYPES = ("image", "voice", "video", "file")


def check_media(world: World, media_id: object, key: str = "media_id") -> str:
    """A media_id from media/upload that has not expired (3 days): 41006 missing, 40007 bad."""
    if not isinstance(media_id, str) or not media_id:
        raise Reject(41006, f"missing {key}")
    media = world.media.get(media_id)
    if media is None or world.now() > media.created_at + MEDIA_LIFETIME_S:
        raise Reject(40007, f"invalid {key}")
    return media_id


def body_of(body: Json, msgtype: str) -> Json:
    """The object named by msgtype must be present."""
    inner = body.get(msgtype)
    if not isinstance(inner, dict):
        raise Reject(INVALID, f"missing {msgtype} object for msgtype {msgtype}")
    return inner


def check_attachments(world: World, body: Json) -> list[Json]:
    """send_welcome_msg / add_msg_template attachments: ≤9, known types, limits per §5.3."""
    attachments = checks.opt_list(body, "attachments", max_len=9)
    for item in attachments:
        if not isinstance(item, dict) or item.get("msgtype") not in ATTACHMENT_TYPES:
            raise Reject(40008, "invalid attachment msgtype")
        check_attachment_object(world, item["msgtype"], body_of(item, item["msgtype"]))
    return attachments


def check_attachment_object(world: World, msgtype: str, inner: object) -> Json:
    """One image | link | miniprogram | video | file object (§5.3 limits)."""
    if not isinstance(inner, dict):
        raise Reject(INVALID, f"invalid {msgtype} object")
    if msgtype == "image":
        if "media_id" in inner or "pic_url" not in inner:
            check_media(world, inner.get("media_id"))
    elif msgtype == "link":
        need_str(inner, "title", max_bytes=128)
        need_str(inner, "url", max_bytes=2048)
        opt_str(inner, "picurl", max_bytes=2048)
        opt_str(inner, "desc", max_bytes=512)
    elif msgtype == "miniprogram":
        need_str(inner, "title", max_bytes=64)
        check_media(world, inner.get("pic_media_id"), "pic_media_id")
        need_str(inner, "appid")
        need_str(inner, "page")
    else:
        check_media(world, inner.get("media_id"))
    return inner


def check_text(body: Json, limit: int) -> Json | None:
    """An optional `text.content` of at most `limit` bytes (45002 beyond)."""
    text = checks.opt_obj(body, "text")
    if text is None:
        return None
    content = text.get("content")
    if not isinstance(content, str):
        raise Reject(INVALID, "invalid text.content")
    checks.check_len(content, "text.content", max_bytes=limit, code=45002)
    return text


def app_message(world: World, body: Json) -> Json:
    """message/send and appchat/send bodies (§5.2); text over 2048 bytes is truncated, as WeCom
    documents, everything else over its limit is refused."""
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str):
        raise Reject(40008, "missing msgtype")
    inner = body_of(body, msgtype) if msgtype in APP_BODIES or msgtype in OTHER_APP else None
    if inner is None:
        raise Reject(40008, f"invalid msgtype {msgtype}")
    check = APP_BODIES.get(msgtype)
    return {msgtype: check(world, inner) if check else inner, "msgtype": msgtype}


def _app_text(_world: World, inner: Json) -> Json:
    content = inner.get("content")
    if not isinstance(content, str) or not content:
        raise Reject(44004, "empty text content")
    raw = content.encode("utf-8")[:2048]
    return {**inner, "content": raw.decode("utf-8", "ignore")}


def _app_markdown(_world: World, inner: Json) -> Json:
    need_str(inner, "content", code=44004)
    checks.check_len(inner["content"], "markdown.content", max_bytes=2048, code=45002)
    return inner


def _app_textcard(_world: World, inner: Json) -> Json:
    need_str(inner, "title", max_bytes=128, code=41016)
    need_str(inner, "description", max_bytes=512, code=41033)
    need_str(inner, "url", max_bytes=2048, code=41010)
    opt_str(inner, "btntxt", max_chars=4)
    return inner


def _app_news(_world: World, inner: Json) -> Json:
    return check_news(inner)


def check_news(inner: Json) -> Json:
    """1 to 8 articles (45008 beyond), each with a title."""
    articles = inner.get("articles")
    if not isinstance(articles, list) or not articles:
        raise Reject(INVALID, "news.articles needs 1 to 8 articles")
    if len(articles) > 8:
        raise Reject(45008, "more than 8 news articles")
    for article in articles:
        _check_article(article)
    return inner


def _check_article(article: object) -> None:
    if not isinstance(article, dict):
        raise Reject(INVALID, "invalid article")
    need_str(article, "title", max_bytes=128, code=41016)
    opt_str(article, "description", max_bytes=512)
    opt_str(article, "url", max_bytes=2048)


def _app_media(world: World, inner: Json) -> Json:
    check_media(world, inner.get("media_id"))
    return inner


APP_BODIES = {"text": _app_text, "markdown": _app_markdown, "textcard": _app_textcard,
              "news": _app_news, **{kind: _app_media for kind in MEDIA_TYPES}}
OTHER_APP = ("mpnews", "miniprogram_notice", "template_card", "interactive_taskcard")
KF_TYPES = ("text", "image", "voice", "video", "file", "link", "miniprogram", "msgmenu",
            "location", "business_card", "ca_link")


def kf_message(world: World, body: Json) -> Json:
    """kf/send_msg and send_msg_on_event bodies (§5.11)."""
    msgtype = body.get("msgtype")
    if msgtype not in KF_TYPES:
        raise Reject(40008, f"invalid msgtype {msgtype}")
    inner = body_of(body, msgtype)
    if msgtype == "text":
        need_str(inner, "content", code=44004)
        checks.check_len(inner["content"], "text.content", max_bytes=2048, code=45002)
    elif msgtype in MEDIA_TYPES:
        check_media(world, inner.get("media_id"))
    elif msgtype == "link":
        need_str(inner, "title", max_bytes=128)
        need_str(inner, "url", max_bytes=2048)
        opt_str(inner, "desc", max_bytes=512)
        check_media(world, inner.get("thumb_media_id"), "thumb_media_id")
    return {"msgtype": msgtype, msgtype: inner}


WEBHOOK_LIMITS = {"text": 2048, "markdown": 4096}
WEBHOOK_TYPES = ("text", "markdown", "image", "news", "file", "voice", "template_card")


def webhook_message(body: Json) -> Json:
    """Group robot bodies (§5.13)."""
    msgtype = body.get("msgtype")
    if msgtype not in WEBHOOK_TYPES:
        raise Reject(40008, f"invalid msgtype {msgtype}")
    inner = body_of(body, msgtype)
    if msgtype in WEBHOOK_LIMITS:
        need_str(inner, "content", code=44004)
        checks.check_len(inner["content"], f"{msgtype}.content",
                         max_bytes=WEBHOOK_LIMITS[msgtype], code=45002)
    elif msgtype == "image":
        _webhook_image(inner)
    elif msgtype == "news":
        check_news(inner)
    elif msgtype in ("file", "voice"):
        need_str(inner, "media_id", code=41006)
    return {"msgtype": msgtype, msgtype: inner}


def _webhook_image(inner: Json) -> None:
    encoded, md5 = need_str(inner, "base64"), need_str(inner, "md5")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Reject(INVALID, "image.base64 is not Base64") from None
    if hashlib.md5(raw).hexdigest() != md5.lower():
        raise Reject(INVALID, "image.md5 does not match the image")
    if len(raw) > 2 * 1024 * 1024:
        raise Reject(45001, "image larger than 2 MB")
