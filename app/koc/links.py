"""A recommender's links: their own page (signed, bound to them, expiring like the
verification link; it shows their referrals and rewards) and the share page of their code
(public by design: it shows only the QR code a friend scans)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.verify.links import LinkError, VerifyLinks

if TYPE_CHECKING:
    from app.engine.config import Settings

__all__ = ["KocLinks", "LinkError", "koc_links"]
PAGE_TTL_H = 30 * 24  # a month: recommenders come back to their page


class KocLinks(VerifyLinks):
    salt, path = "sopbot.koc", "/koc/me/"

    def share_url(self, short_id: str) -> str:
        return f"{self.public_url}/koc/r/{short_id}"


def koc_links(settings: Settings) -> KocLinks:
    return KocLinks(settings.secret_key.get_secret_value(), settings.public_url,
                    PAGE_TTL_H * 3600)
