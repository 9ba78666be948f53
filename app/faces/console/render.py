"""Rendering console pages: one Jinja2 environment, the nav, and the headers every page gets.

`render(request, "page.html", **ctx)` hands the template, besides `ctx`: `operator` (the
logged-in userid, or None on the login page), `csrf_token` (put it in every POST form as
`<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`), `nav` (the entries, the
current one marked) and `static` (the URL prefix of app/faces/console/static/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

STATIC_PATH = "/console/static"

_env = Environment(loader=PackageLoader("app.faces.console", "templates"),
                   autoescape=select_autoescape(default=True), auto_reload=False,
                   trim_blocks=True, lstrip_blocks=True)

# Pages show members' data: never cached by a proxy, never framed by another site. Scripts and
# styles come only from /console/static (no inline script), images also as data: URLs (QR codes).
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str


# The console's pages in menu order. A page is "current" when the request's path is at or
# under its path.
NAV = (
    NavItem("漏斗", "/console/funnel"),
    NavItem("审核", "/console/reviews"),
    NavItem("会员", "/console/members"),
    NavItem("群", "/console/groups"),
    NavItem("群规", "/console/rules"),
    NavItem("推荐官", "/console/koc"),
    NavItem("日历", "/console/calendar"),
    NavItem("内容", "/console/content"),
    NavItem("关键词", "/console/keywords"),
    NavItem("发件箱", "/console/outbox"),
)


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str
    current: bool


def nav_for(path: str) -> list[NavEntry]:
    return [NavEntry(item.label, item.path, path == item.path or path.startswith(item.path + "/"))
            for item in NAV]


def render(request: Request, name: str, *, status_code: int = 200,
           headers: dict[str, str] | None = None, **ctx: Any) -> HTMLResponse:
    """The template `name` as a response with the console's headers."""
    session = getattr(request.state, "console", None)
    values: dict[str, Any] = {
        "operator": session.userid if session else None,
        "csrf_token": session.csrf if session else "",
        "nav": nav_for(request.url.path) if session else [],
        "static": STATIC_PATH,
        "empty_pools": getattr(request.state, "empty_pools", []),  # console/banner.py
    }
    html = _env.get_template(name).render(values | ctx)
    return HTMLResponse(html, status_code, headers=HEADERS | (headers or {}))
