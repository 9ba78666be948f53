"""Whether a POST to /verify/{token} was sent by a page of another site, as the browser says.

The signed link is what authorises a submission; this check is defence in depth, so a page
elsewhere that knows a member's link cannot make the member's browser submit the form. It
trusts only what browsers set themselves (Sec-Fetch-Site, Origin) and refuses only when one of
them names another site: a POST with neither header (old WeChat browsers) goes on to the link.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from app.faces.web.fetch_metadata import fetch_site, from_another_site

_DEFAULT_PORTS = {"http": 80, "https": 443}


def cross_site(request: Request, public_url: str) -> bool:
    """True when Sec-Fetch-Site or Origin says the POST comes from another origin."""
    if from_another_site(request):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    if origin.strip() == "null":
        # Our pages send Referrer-Policy: same-origin, so our own form carries its real
        # origin; "null" comes from a sandboxed frame or a data: page, unless the browser's own
        # Sec-Fetch-Site already vouched for the request.
        return fetch_site(request) is None
    own = {origin_of(public_url), origin_of(str(request.base_url))}
    return origin_of(origin) not in own - {None}


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL, lower-cased and without a default port; None if none."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if not scheme or not host:
        return None
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    shown = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{host}{shown}"
