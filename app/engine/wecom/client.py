"""The async WeCom API client: typed calls in, typed answers or one exception tree out.

    call(request)
      ├─ webhook/send: POST /cgi-bin/webhook/send?key=<the named robot's key>
      └─ others:       token = tokens.get(request.secret)
                       POST /cgi-bin/{path}?access_token=token   (UTF-8 JSON, no \\u escapes)
                       TokenRejected (40014, 42001, or 40001 outside gettoken)?
                         → token = tokens.refresh(secret, token), the same request once more;
                           a second rejection is raised (never a loop)

Failures are `app.engine.wecom.errors` exceptions: no answer → NotSent / OutcomeUnknown (the caller
decides with `request.is_dedupable()` whether to send again), errcode != 0 → `error_for`.
URLs carry the access token or the robot key, so no message and no log line ever holds a URL
or a token: errors and logs name the API path only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

import httpx
from pydantic import SecretStr, ValidationError

from app.engine.logs import get_logger
from app.engine.wecom.api import ApiCall, ApiResponse, TokenResponse, WebhookSend
from app.engine.wecom.errors import (
    ApiError,
    ConfigurationError,
    NotSent,
    OutcomeUnknown,
    TokenRejected,
    TransportError,
    WeComError,
    error_for,
)

log = get_logger("sopbot.wecom.client")

R = TypeVar("R", bound=ApiResponse)
Answer = dict[str, Any]

SECRET_VARIABLES = {
    "agent": "WECOM_AGENT_SECRET",
    "contact": "WECOM_CONTACT_SECRET (or WECOM_AGENT_SECRET)",
    "kf": "WECOM_KF_SECRET (or WECOM_AGENT_SECRET)",
}
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
# The request cannot have left: nothing can have taken effect.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
# Query parameters whose values are secrets, scrubbed from any errmsg we pass on.
SECRET_PARAMS = ("access_token", "corpsecret", "key")


class TokenProvider(Protocol):
    """Access tokens per secret name ("agent", "contact", "kf"); app.engine.wecom.tokens has the
    database-backed one."""

    async def get(self, secret: str) -> str: ...

    async def refresh(self, secret: str, rejected: str) -> str:
        """A token other than `rejected` (fetched unless someone already replaced it)."""
        ...


class NotConfigured(ConfigurationError):
    """A secret or robot that a call needs is not configured, so nothing was sent.

    It has no errcode (WeCom was never asked): errcode is 0 and .hint names the setting."""

    def __init__(self, api: str, hint: str) -> None:
        WeComError.__init__(self, api, "not configured")
        self.errcode, self.errmsg, self.hint = 0, "", hint


def encode_json(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON. Not httpx's json=: WeCom text must not arrive as \\uXXXX escapes
    (the MP platform rejects them with 40033; reference §5.0)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WeComClient:
    """Typed WeCom server API calls over one shared httpx.AsyncClient."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, corp_id: str,
                 secrets: Mapping[str, SecretStr | None],
                 robots: Mapping[str, str] | None = None,
                 tokens: TokenProvider | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secrets = dict(secrets)
        self._robots = dict(robots or {})
        # Set after construction when the provider needs this client to fetch tokens.
        self.tokens = tokens

    # --- the core ----------------------------------------------------------------------------

    async def fetch_token(self, secret: str) -> tuple[str, int]:
        """gettoken for a secret name: (access_token, expires_in). Wrong ids or secrets raise
        ConfigurationError (40001, 40013, 40091): retrying cannot help."""
        params = {"corpid": self.corp_id, "corpsecret": self._secret_value(secret)}
        data = await self._exchange("gettoken", "GET", params, token_auth=False)
        answer = cast(TokenResponse, _parse("gettoken", TokenResponse, data))
        if not answer.access_token:
            raise OutcomeUnknown("gettoken", "the answer holds no access_token")
        return answer.access_token, answer.expires_in

    async def call(self, request: ApiCall[R]) -> R:
        """Send one typed request; its typed answer, or an app.engine.wecom.errors exception."""
        content = None if request.method == "GET" else encode_json(request.body() or {})
        if isinstance(request, WebhookSend):
            params = {"key": self._robot_key(request.robot)}
            data = await self._exchange(request.path, "POST", params, content=content,
                                        token_auth=False)
        else:
            assert request.secret is not None, f"{request.path} names no secret"

            def send(token: str) -> Awaitable[Answer]:
                params = {**request.query(), "access_token": token}
                return self._exchange(request.path, request.method, params, content=content)

            data = await self._with_token(request.path, request.secret, send)
        return cast(R, _parse(request.path, request.response_model, data))

    async def download_media(self, media_id: str, *, max_bytes: int,
                             secret: str = "kf") -> bytes:
        """A temporary media file's bytes (media/get); WeCom answers errors as JSON. A file
        over `max_bytes` is refused (MediaTooLarge) without reading the rest."""
        def send(token: str) -> Awaitable[Answer]:
            return self._download(media_id, token, max_bytes)

        data = await self._with_token("media/get", secret, send)
        return cast(bytes, data["content"])

    async def _download(self, media_id: str, token: str, max_bytes: int) -> Answer:
        params = {"media_id": media_id, "access_token": token}
        try:
            async with self.http.stream("GET", f"{self.base_url}/cgi-bin/media/get",
                                        params=params) as response:
                if "json" in response.headers.get("content-type", ""):
                    await response.aread()
                    data = _json_object("media/get", response)
                    raise _api_error("media/get", _errcode("media/get", data),
                                     _scrub(str(data.get("errmsg", "")), params), True)
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge("media/get", f"larger than {max_bytes} bytes")
                    chunks.append(chunk)
        except httpx.TransportError as exc:
            raise _transport_error("media/get", exc) from None
        return {"content": b"".join(chunks)}

    async def _with_token(self, path: str, secret: str,
                          send: Callable[[str], Awaitable[Answer]]) -> Answer:
        tokens = self._token_provider()
        token = await _for(path, tokens.get(secret))
        try:
            return await send(token)
        except TokenRejected:
            # WeCom may drop a token before its expiry: refresh once and retry once. A second
            # rejection propagates; refreshing again would only hammer gettoken.
            log.info("wecom_token_rejected", api=path, credential=secret)
            token = await _for(path, tokens.refresh(secret, token))
            return await send(token)

    async def _exchange(self, path: str, method: str, params: Mapping[str, str], *,
                        content: bytes | None = None, token_auth: bool = True) -> Answer:
        """One HTTP round trip: the answer's JSON object when errcode is 0, else an error."""
        started = time.monotonic()
        try:
            response = await self.http.request(
                method, f"{self.base_url}/cgi-bin/{path}", params=params, content=content,
                headers=JSON_HEADERS if content is not None else None)
        except httpx.TransportError as exc:
            log.debug("wecom_call_failed", api=path, error=type(exc).__name__)
            raise _transport_error(path, exc) from None  # the cause may render the URL
        data = _json_object(path, response)
        errcode = _errcode(path, data)
        log.debug("wecom_call", api=path, errcode=errcode,
                  elapsed_ms=round((time.monotonic() - started) * 1000, 1))
        if errcode != 0:
            raise _api_error(path, errcode, _scrub(str(data.get("errmsg", "")), params),
                             token_auth)
        return data

    def _token_provider(self) -> TokenProvider:
        if self.tokens is None:
            raise RuntimeError("WeComClient.tokens is not set: wire a TokenProvider first")
        return self.tokens

    def _secret_value(self, name: str) -> str:
        value = self._secrets.get(name)
        if value is None or not value.get_secret_value():
            hint = (f"set {SECRET_VARIABLES[name]}" if name in SECRET_VARIABLES
                    else f"no secret named {name!r}; known: {', '.join(SECRET_VARIABLES)}")
            raise NotConfigured("gettoken", hint)
        return value.get_secret_value()

    def _robot_key(self, robot: str) -> str:
        key = self._robots.get(robot)
        if not key:
            raise NotConfigured("webhook/send", f"configure a group robot named {robot!r}")
        return key


# --- answers -----------------------------------------------------------------------------------


def _transport_error(path: str, exc: httpx.TransportError) -> TransportError:
    # Only the exception's class: its text or its request could carry the URL.
    if isinstance(exc, NOT_SENT):
        return NotSent(path, f"request not sent ({type(exc).__name__})")
    return OutcomeUnknown(path, f"no answer, the request may have taken effect "
                                f"({type(exc).__name__})")


class MediaTooLarge(WeComError):
    """A media file larger than the caller accepts."""


def _json_object(path: str, response: httpx.Response) -> Answer:
    # WeCom answers 200 even for business errors; anything else came from a proxy or a
    # failing server after the request arrived, so the outcome is unknown.
    if response.status_code != 200:
        why = "server error" if response.status_code >= 500 else "unexpected status"
        raise OutcomeUnknown(path, f"HTTP {response.status_code} ({why})")
    try:
        data = json.loads(response.content)
    except ValueError:
        raise OutcomeUnknown(path, "the answer is not JSON") from None
    if not isinstance(data, dict):
        raise OutcomeUnknown(path, "the answer is not a JSON object")
    return data


def _errcode(path: str, data: Answer) -> int:
    try:
        return int(data.get("errcode", 0))
    except (TypeError, ValueError):
        raise OutcomeUnknown(path, "the answer's errcode is not a number") from None


def _api_error(path: str, errcode: int, errmsg: str, token_auth: bool) -> ApiError:
    if token_auth and errcode == 40001:
        # Outside gettoken, 40001 means this token is unusable (wechatpy refreshes on it).
        return TokenRejected(path, errcode, errmsg)
    return error_for(path, errcode, errmsg)


def _scrub(errmsg: str, params: Mapping[str, str]) -> str:
    for name in SECRET_PARAMS:
        if value := params.get(name):
            errmsg = errmsg.replace(value, "***")
    return errmsg


def _parse(path: str, model: type[ApiResponse], data: Answer) -> ApiResponse:
    try:
        return model.model_validate(data)
    except ValidationError:
        # errcode was 0, so the call worked; only its details are unreadable.
        raise OutcomeUnknown(path, f"the answer does not fit {model.__name__}") from None


async def _for(path: str, getting: Awaitable[str]) -> str:
    """A token for a call to `path`. Without one that call never left, whatever happened to
    gettoken's own request: its timeout must not make the call's outcome unknown."""
    try:
        return await getting
    except TransportError as exc:
        raise NotSent(path, f"no access token: {exc}") from None
