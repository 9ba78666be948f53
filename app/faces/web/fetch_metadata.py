"""What the browser says about who sent a request: its Sec-Fetch-Site header (Fetch Metadata),
which pages cannot forge. One rule for every form sopbot serves (the console's login, the
members' verification form)."""

from __future__ import annotations

from starlette.requests import Request

# A request from one of our own pages, or one the user made by hand (a typed URL, a bookmark).
OURS = frozenset({"same-origin", "none"})


def fetch_site(request: Request) -> str | None:
    """The browser's Sec-Fetch-Site, normalised; None from a browser too old to send one."""
    value = request.headers.get("sec-fetch-site")
    return None if value is None else value.strip().lower()


def from_another_site(request: Request) -> bool:
    """True when the browser says another site's page sent the request."""
    site = fetch_site(request)
    return site is not None and site not in OURS
