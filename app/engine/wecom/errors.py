"""What can go wrong with a WeCom call, as one exception tree (wecom-reference §7).

    WeComError                  any failed call; .api (path, never the URL: it holds the token)
    ├── TransportError          no answer from WeCom
    │   ├── NotSent             the request never left (connect error): safe to send again
    │   └── OutcomeUnknown      the request left but no answer came (timeout, dropped
    │                           connection, HTTP 5xx): it may have taken effect
    └── ApiError                WeCom answered with errcode != 0; .errcode, .errmsg
        ├── Retryable           try again later: -1 system busy, 45033, 41063
        │   └── RateLimited     45009: wait for the violated window (.retry_after_s)
        ├── TokenRejected       40014 / 42001: refresh the token once and retry once
        ├── ConfigurationError  the corp or app is set up wrong (40001, 48002, 60020, ...):
        │                       nothing works until an admin acts; .hint says what to do
        └── FinalError          this request can never succeed as is (41051, 41050, 84061, ...):
            │                   record it and move on
            └── InvalidRequest  our request is malformed (41001, 40008, 40058, ...): a bug

Codes not in the table are final: the official error guide says only system failures deserve
automatic retries.
"""

from __future__ import annotations

RATE_WINDOW_S = 60.0  # 45009 lasts as long as the violated window; minute limits are the usual


class WeComError(Exception):
    """A WeCom call failed."""

    def __init__(self, api: str, message: str) -> None:
        super().__init__(f"{api}: {message}")
        self.api = api


class TransportError(WeComError):
    """No answer from WeCom."""


class NotSent(TransportError):
    """The request never reached WeCom."""


class OutcomeUnknown(TransportError):
    """The request reached (or may have reached) WeCom, but its answer was lost."""


class ApiError(WeComError):
    """WeCom answered with a non-zero errcode."""

    def __init__(self, api: str, errcode: int, errmsg: str = "") -> None:
        super().__init__(api, f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}")
        self.errcode, self.errmsg = errcode, errmsg


class Retryable(ApiError):
    """WeCom is busy; the same request may succeed later."""


class RateLimited(Retryable):
    """45009: a frequency limit was hit; nothing of this kind should be sent for a while."""

    retry_after_s = RATE_WINDOW_S


class TokenRejected(ApiError):
    """The access token is invalid or expired."""


class ConfigurationError(ApiError):
    """The corp, app or server is configured wrong; .hint tells the admin what to fix."""

    def __init__(self, api: str, errcode: int, errmsg: str = "") -> None:
        super().__init__(api, errcode, errmsg)
        self.hint = CONFIG_HINTS.get(errcode, "see the WeCom error code reference")

    def __str__(self) -> str:
        return f"{super().__str__()} (fix: {self.hint})"


class FinalError(ApiError):
    """This request cannot succeed as it is."""


class InvalidRequest(FinalError):
    """The request itself is wrong: a bug in the caller."""


CONFIG_HINTS: dict[int, str] = {
    40001: "the secret is wrong: check WECOM_AGENT_SECRET / WECOM_CONTACT_SECRET / "
           "WECOM_KF_SECRET",
    40013: "the corp id is wrong: check WECOM_CORP_ID",
    40091: "the secret is invalid: reset it in the admin console and update the setting",
    48002: "this API is not allowed for this secret: add the app under 客户联系 → 可调用应用 "
           "(or set WECOM_CONTACT_SECRET), or grant 微信客服 permission (WECOM_KF_SECRET)",
    60011: "the app cannot see this member, department or tag: widen the app's visible scope",
    60020: "this server's public IP is not in the app's 企业可信IP list: add it in the admin "
           "console",
    41055: "the corp has 100 group welcome templates: delete unused ones",
    93000: "the group robot's webhook key is invalid or the robot was removed",
    95000: "the kf account (open_kfid) is invalid",
    95004: "the kf account (open_kfid) does not exist",
    95017: "the 微信客服 API is not enabled for this app: enable 会话消息管理",
}

RETRYABLE = {-1, 45033, 41063}
TOKEN_REJECTED = {40014, 42001}
CONFIGURATION = set(CONFIG_HINTS)
# 81017: groupchat/list without owner_filter over too many people; the caller must filter.
INVALID_REQUEST = {41001, 40008, 40035, 40058, 40063, 44001, 44004, 81017}


def error_for(api: str, errcode: int, errmsg: str = "") -> ApiError:
    """The exception for a non-zero errcode answered by `api`."""
    if errcode == 45009:
        return RateLimited(api, errcode, errmsg)
    if errcode in RETRYABLE:
        return Retryable(api, errcode, errmsg)
    if errcode in TOKEN_REJECTED:
        return TokenRejected(api, errcode, errmsg)
    if errcode in CONFIGURATION:
        return ConfigurationError(api, errcode, errmsg)
    if errcode in INVALID_REQUEST:
        return InvalidRequest(api, errcode, errmsg)
    return FinalError(api, errcode, errmsg)
