"""Rendering the member's pages from templates/ with the texts of sop_flows/verify.yaml, and
the headers every one of them (and their stylesheet, static/verify.css) is served with."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from app.verify.flows import CONSUMER, VerifyFlows
from app.verify.models import APPROVED, PENDING, Verification
from app.verify.photos import MAX_PHOTOS, megabytes

STYLESHEET_PATH = "/verify/static/verify.css"
_CSS = (Path(__file__).parent / "static" / "verify.css").read_bytes()
# The URL changes with the file, so browsers may keep it long and still see a new one at once.
STYLESHEET_URL = f"{STYLESHEET_PATH}?v={hashlib.sha256(_CSS).hexdigest()[:12]}"

# The link in the page's URL is the member's credential, and the form echoes what they typed.
# So: no script may run (none is needed), styles come from this site only, no other site may
# frame the page or receive its URL as a Referer, and the form posts only back to sopbot.
# Images may be remote: the group QR code is WeCom's https URL (the simulator's is http).
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'none'; style-src 'self'; "
                                "img-src 'self' data: https: http:; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Never cached by a proxy or the WeChat browser: the page shows the member's own data.
_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
_CSS_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}

# Autoescaped: the form echoes what the member typed.
_env = Environment(loader=PackageLoader("app.faces.web.verify", "templates"),
                   autoescape=select_autoescape(default=True), auto_reload=False)
_env.globals["stylesheet"] = STYLESHEET_URL


def form_page(t: VerifyFlows, max_bytes: int, values: Mapping[str, str] | None = None,
              errors: Mapping[str, str] | None = None, status_code: int = 200,
              notice: str | None = None) -> HTMLResponse:
    hint = t.form.photos_hint.format(max_photos=MAX_PHOTOS, max_mb=megabytes(max_bytes))
    html = _env.get_template("form.html").render(
        t=t, title=t.form.title, values=values or {}, errors=errors or {}, photos_hint=hint,
        notice=notice)
    return HTMLResponse(html, status_code, headers=_HEADERS)


def message_page(t: VerifyFlows, text: str, kind: str, status_code: int = 200,
                 qr_code: str | None = None) -> HTMLResponse:
    html = _env.get_template("message.html").render(title=t.form.title, text=text, kind=kind,
                                                     qr_code=qr_code)
    return HTMLResponse(html, status_code, headers=_HEADERS)


def stylesheet() -> Response:
    return Response(_CSS, media_type="text/css; charset=utf-8", headers=_CSS_HEADERS)


@dataclass(frozen=True)
class JoinCode:
    """The approved member's way in: their segment's label and its 加入群聊 QR code."""

    segment_label: str
    qr_code: str


def status_page(t: VerifyFlows, row: Verification, join: JoinCode | None = None) -> HTMLResponse:
    """Where the member's verification stands; approved and routed, the group QR to scan."""
    if row.status == PENDING:
        return message_page(t, t.pages.pending, "pending")
    if row.status == APPROVED and join is not None:
        return message_page(t, t.pages.approved_join.format(segment=join.segment_label),
                            "approved", qr_code=join.qr_code)
    if row.status == APPROVED:
        return message_page(t, t.pages.approved, "approved")
    if row.identity_type == CONSUMER:
        return message_page(t, t.pages.consumer, "rejected")
    return message_page(t, t.pages.rejected.format(reason=row.reason or ""), "rejected")

