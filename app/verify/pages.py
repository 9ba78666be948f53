"""Rendering the member's pages from templates/ with the texts of sop_flows/verify.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from app.verify.flows import CONSUMER, VerifyFlows
from app.verify.models import APPROVED, PENDING, Verification
from app.verify.photos import MAX_PHOTOS

# Autoescaped: the form echoes what the member typed.
_env = Environment(loader=PackageLoader("app.verify", "templates"),
                   autoescape=select_autoescape(default=True), auto_reload=False)
# Never cached by a proxy or the WeChat browser: the page shows the member's own data.
_HEADERS = {"Cache-Control": "no-store"}


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


def megabytes(size: int) -> str:
    return f"{round(size / (1024 * 1024), 1):g}"
