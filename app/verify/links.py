"""Signed, expiring links bound to one member (external_userid): the verification form's, and
the recommender's own page (app/koc/links.py) with a salt and path of its own.

itsdangerous (Pallets) signs and time-stamps the token: a forged or altered token fails the
signature, an old one fails the age check, and nothing needs storing to check either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

if TYPE_CHECKING:
    from app.engine.config import Settings

SALT = "sopbot.verify"


class LinkError(ValueError):
    """The token is forged, altered or expired; `expired` tells the two apart."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class VerifyLinks:
    # A token made for one kind of page does not open another: each has its salt.
    salt, path = SALT, "/verify/"

    def __init__(self, secret_key: str, public_url: str, ttl_s: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=self.salt)
        self.public_url, self.ttl_s = public_url.rstrip("/"), ttl_s

    def token(self, external_userid: str) -> str:
        return self._serializer.dumps({"u": external_userid})

    def url(self, external_userid: str) -> str:
        return f"{self.public_url}{self.path}{self.token(external_userid)}"

    def member_of(self, token: str) -> str:
        """The external_userid the token was made for, or LinkError."""
        try:
            # The age is checked in whole seconds, so the TTL's whole part decides alike.
            data = self._serializer.loads(token, max_age=int(self.ttl_s))
        except SignatureExpired:
            raise LinkError("the link has expired", expired=True) from None
        except BadSignature:
            raise LinkError("the link is not valid") from None
        user = data.get("u") if isinstance(data, dict) else None
        if not isinstance(user, str) or not user:
            raise LinkError("the link is not valid")
        return user


def links_for(settings: Settings) -> VerifyLinks:
    return VerifyLinks(settings.secret_key.get_secret_value(), settings.public_url,
                       settings.verify_link_ttl_h * 3600)
