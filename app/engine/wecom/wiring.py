"""build_wecom(): the one way every process (service, CLI, bench) gets a WeCom client."""

from __future__ import annotations

import httpx

from app.engine.config import Settings
from app.engine.db import Database
from app.engine.wecom.archive_source import ArchiveSource, SdkSource, SimulatorSource
from app.engine.wecom.client import WeComClient
from app.engine.wecom.tokens import TokenStore, cache_key


def build_wecom(settings: Settings, db: Database,
                transport: httpx.AsyncBaseTransport | None = None,
                ) -> tuple[httpx.AsyncClient, WeComClient, TokenStore]:
    """One shared HTTP client, the API client on it, and the token store it draws from.

    `transport` replaces the network (tests: the fake WeCom)."""
    # Few keep-alive connections: httpcore checks every pooled connection on every request, so
    # a large idle pool costs CPU on each call (the sender keeps few requests in flight).
    http = httpx.AsyncClient(timeout=httpx.Timeout(settings.wecom_timeout_s, connect=3.0),
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                             transport=transport)
    secrets = {"agent": settings.agent_secret, "contact": settings.contact_secret,
               "kf": settings.kf_secret, "archive": settings.archive_secret}
    wecom = WeComClient(http, base_url=settings.api_base, corp_id=settings.corp_id,
                        secrets=secrets, robots=settings.robot_keys)
    keys = {name: cache_key(name, settings.corp_id, secret.get_secret_value() if secret else "")
            for name, secret in secrets.items()}
    tokens = TokenStore(db, wecom.fetch_token, keys)
    wecom.tokens = tokens
    return http, wecom, tokens


def build_archive_source(settings: Settings, wecom: WeComClient) -> ArchiveSource:
    """SOPBOT_ARCHIVE_SOURCE's chat archive source: WeCom's SDK, or the built-in simulator."""
    assert settings.archive_secret is not None
    if settings.archive_source == "simulator":
        return SimulatorSource(wecom, settings.corp_id)
    proxy = settings.archive_proxy.get_secret_value() if settings.archive_proxy else ""
    return SdkSource(settings.corp_id, settings.archive_secret.get_secret_value(),
                     settings.archive_private_keys, proxy, timeout_s=int(settings.wecom_timeout_s))
