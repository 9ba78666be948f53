"""Settings from the environment (and an optional .env file), validated once at start.

Variable names are the contract of DESIGN.md §4. A missing or malformed value becomes a
`ConfigError` whose message is one line naming the variable and never its value.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.engine.wecom.archive_keys import parse_archive_keys

AES_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{43}")
DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
# The community's time zone: days, posting slots and reports are in Beijing time.
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Rate:
    count: int
    per_s: float
    burst: int = 0  # requests a quiet key lets out at once, part of `count` (0 and 1: one)

    @property
    def _extra(self) -> int:
        """Requests beyond the first that a quiet key lets out at once."""
        return max(self.burst - 1, 0)

    @property
    def interval(self) -> timedelta:
        # Rounded up to whole microseconds (timedelta's grain): rounding down could let one
        # request too many into a window.
        micros = self.per_s * 1_000_000 / (self.count - self._extra)
        return timedelta(microseconds=math.ceil(round(micros, 3)))

    @property
    def tolerance(self) -> timedelta:
        """How far ahead of now the TAT may be for a request to go out now."""
        return self.interval * self._extra


_SPEC = re.compile(r"(\d+)/(\d+(?:\.\d+)?)(?:\+(\d+))?")



def parse_rates(text: str) -> dict[str, Rate]:
    """'webhook/send=20/60,message/send=6000/60+600' → rates by API path ('*' for any other);
    `+N` lets N requests of a quiet key out at once."""
    rates: dict[str, Rate] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        api, _, spec = item.partition("=")
        match = _SPEC.fullmatch(spec.strip())
        if match is None:
            raise ValueError(f"{item!r} is not API=COUNT/SECONDS or API=COUNT/SECONDS+BURST")
        rate = Rate(int(match[1]), float(match[2]), int(match[3] or 0))
        if rate.count < 1 or rate.per_s <= 0:
            raise ValueError(f"{item!r}: COUNT and SECONDS must be positive")
        if rate.burst >= rate.count:
            raise ValueError(f"{item!r}: BURST must be smaller than COUNT")
        rates[api.strip()] = rate
    return rates



class ConfigError(Exception):
    """A configuration value is missing or malformed; str() is one line for the operator."""


class DatabaseSettings(BaseSettings):
    """What `sopbot migrate` needs: only the database."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///sopbot.db", validation_alias="SOPBOT_DATABASE_URL")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            backend = ""
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("must be a sqlite:///PATH or postgresql+psycopg://USER@HOST/DB URL")
        return value


class FlowsSettings(DatabaseSettings):
    """What a read-only report needs: the database, and sop_flows/ for its labels."""

    flows_path: Path = Field(Path("sop_flows"), validation_alias="SOPBOT_FLOWS")


class Settings(FlowsSettings):
    """Everything `sopbot serve` needs."""

    corp_id: str = Field(validation_alias="WECOM_CORP_ID", min_length=1)
    callback_token: SecretStr = Field(validation_alias="WECOM_CALLBACK_TOKEN", min_length=1)
    callback_aes_key: SecretStr = Field(validation_alias="WECOM_CALLBACK_AES_KEY")
    agent_id: int | None = Field(None, validation_alias="WECOM_AGENT_ID")
    agent_secret: SecretStr | None = Field(None, validation_alias="WECOM_AGENT_SECRET")
    contact_secret_raw: SecretStr | None = Field(None, validation_alias="WECOM_CONTACT_SECRET")
    kf_secret_raw: SecretStr | None = Field(None, validation_alias="WECOM_KF_SECRET")
    api_base: str = Field(DEFAULT_API_BASE, validation_alias="WECOM_API_BASE")
    keywords_path: Path = Field(Path("keywords.yaml"), validation_alias="SOPBOT_KEYWORDS")
    operators: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias="SOPBOT_OPERATORS"
    )
    # Signs the members' verification links; changing it invalidates every link given out.
    secret_key: SecretStr = Field(validation_alias="SOPBOT_SECRET_KEY", min_length=16)
    # Where members reach this service (the verification links in welcomes point here).
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="SOPBOT_PUBLIC_URL")
    verify_link_ttl_h: float = Field(72.0, validation_alias="SOPBOT_VERIFY_LINK_TTL_H", gt=0)
    # How long a console login lasts (hours from the login, not from the last click).
    console_session_h: float = Field(12.0, validation_alias="SOPBOT_CONSOLE_SESSION_H", gt=0,
                                     le=24 * 30)
    photo_dir: Path = Field(Path("data/photos"), validation_alias="SOPBOT_PHOTO_DIR")
    # Largest verification photo accepted; a phone camera's JPEG is usually 2-4 MB.
    photo_max_bytes: int = Field(5 * 1024 * 1024, validation_alias="SOPBOT_PHOTO_MAX_BYTES",
                                 ge=1024)
    # The app's server reports funnel steps and platform users with this key; unset: /api is off.
    api_key: SecretStr | None = Field(None, validation_alias="SOPBOT_API_KEY", min_length=16)

    host: str = Field("127.0.0.1", validation_alias="SOPBOT_HOST")
    # Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, comma-separated.
    # None by default: a header anyone can send must not choose the client address that the
    # login throttle counts by.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="SOPBOT_TRUSTED_PROXIES")
    port: int = Field(8000, validation_alias="SOPBOT_PORT", ge=1, le=65535)
    log_level: str = Field("info", validation_alias="SOPBOT_LOG_LEVEL")
    log_format: str = Field("auto", validation_alias="SOPBOT_LOG_FORMAT")
    max_body_bytes: int = Field(64 * 1024, validation_alias="SOPBOT_MAX_BODY_BYTES", ge=1024)
    # Every other JSON or form body (/api, the console): 413 above it. 5,000 platform users,
    # the largest list /api/platform-users takes, need at most ~2.6 MB (ids and names at their
    # longest, in JSON's \u escapes).
    max_request_bytes: int = Field(4 * 1024 * 1024, validation_alias="SOPBOT_MAX_REQUEST_BYTES",
                                   ge=1024)
    # A signed callback whose URL timestamp is further than this from now is refused (403):
    # WeCom signs each attempt as it sends it and retries within seconds, so only a replay
    # is older. Well inside SOPBOT_INBOX_RETENTION_DAYS, which remembers what was stored.
    callback_max_age_s: int = Field(600, validation_alias="SOPBOT_CALLBACK_MAX_AGE_S", ge=30,
                                    le=86400)
    # How long a callback that accepts a passive reply waits for its handler (WeCom waits 5 s).
    reply_wait_ms: int = Field(1500, validation_alias="SOPBOT_REPLY_WAIT_MS", ge=0, le=4000)
    inbox_max_attempts: int = Field(6, validation_alias="SOPBOT_INBOX_MAX_ATTEMPTS", ge=1)
    inbox_retry_base_s: float = Field(2.0, validation_alias="SOPBOT_INBOX_RETRY_BASE_S", gt=0)
    inbox_retry_max_s: float = Field(600.0, validation_alias="SOPBOT_INBOX_RETRY_MAX_S", gt=0)
    inbox_sweep_s: float = Field(10.0, validation_alias="SOPBOT_INBOX_SWEEP_S", gt=0)
    inbox_concurrency: int = Field(4, validation_alias="SOPBOT_INBOX_CONCURRENCY", ge=1, le=64)
    # Off for web-only replicas: they store callbacks (and handle passive-reply messages
    # inline); other replicas' workers handle the rest.
    inbox_worker: bool = Field(True, validation_alias="SOPBOT_INBOX_WORKER")
    handler_timeout_s: float = Field(30.0, validation_alias="SOPBOT_HANDLER_TIMEOUT_S", gt=0)
    # At least 3 days: WeCom's retries need an hour, and a kf cursor WeCom refuses sends the kf
    # reader back over the last 3 days, whose messages the inbox must still recognise.
    inbox_retention_days: float = Field(30.0, validation_alias="SOPBOT_INBOX_RETENTION_DAYS",
                                        ge=3)
    # Delivery to WeCom (the outbox). Off for web-only replicas, like the inbox worker.
    outbox_sender: bool = Field(True, validation_alias="SOPBOT_OUTBOX_SENDER")
    # Whether this process reads 微信客服 accounts (kf/sync_msg); one reader per account runs
    # at a time whatever the number of replicas.
    kf_reader: bool = Field(True, validation_alias="SOPBOT_KF_READER")
    # Whether this process may run the scheduler (the posting calendar); with several replicas
    # on PostgreSQL one of those that may leads at a time.
    scheduler: bool = Field(True, validation_alias="SOPBOT_SCHEDULER")
    # How often a standby replica tries for the scheduler's lead: a dead leader is replaced
    # within about this long (PostgreSQL drops its lock the moment its connection dies).
    leader_retry_s: float = Field(2.0, validation_alias="SOPBOT_LEADER_RETRY_S", ge=0.2,
                                  le=300)
    outbox_max_attempts: int = Field(8, validation_alias="SOPBOT_OUTBOX_MAX_ATTEMPTS", ge=1)
    outbox_retry_base_s: float = Field(2.0, validation_alias="SOPBOT_OUTBOX_RETRY_BASE_S", gt=0)
    outbox_retry_max_s: float = Field(600.0, validation_alias="SOPBOT_OUTBOX_RETRY_MAX_S", gt=0)
    # How often a sender looks for rows it was not woken for (other replicas', retries due).
    outbox_sweep_s: float = Field(1.0, validation_alias="SOPBOT_OUTBOX_SWEEP_S", gt=0)
    wecom_timeout_s: float = Field(10.0, validation_alias="SOPBOT_WECOM_TIMEOUT_S", gt=0, le=60)
    # "API=COUNT/SECONDS,…" over the defaults (webhook/send=20/60 per robot, *=10000/60).
    rate_limits: str = Field("", validation_alias="SOPBOT_RATE_LIMITS")
    # Group robots by name: "name=webhook-key,…". The keys are secrets.
    robots: SecretStr | None = Field(None, validation_alias="SOPBOT_ROBOTS")
    # The built-in simulator's control key (app/faces/sim/access.py); unset: one is made at start.
    sim_key: SecretStr | None = Field(None, validation_alias="SOPBOT_SIM_KEY", min_length=16)
    # The built-in simulator is a local tool: `serve` refuses a non-loopback SOPBOT_HOST with it
    # unless this says the operator means it.
    sim_allow_remote: bool = Field(False, validation_alias="SOPBOT_SIM_ALLOW_REMOTE")
    # The chat archive (docs/archive.md): off unless its own secret is set (since 2022-09 another
    # app's secret gets 48002). The private keys by publickey_ver: "VER=FILE-OR-PEM,…".
    archive_secret: SecretStr | None = Field(None, validation_alias="WECOM_ARCHIVE_SECRET")
    archive_keys: SecretStr | None = Field(None, validation_alias="SOPBOT_ARCHIVE_KEYS")
    # sdk: WeCom's SDK in a child process; simulator: the built-in simulator's plaintext pages.
    archive_source: str = Field("sdk", validation_alias="SOPBOT_ARCHIVE_SOURCE")
    # Whether this process reads the archive (one reader per corp at a time across replicas).
    archive_reader: bool = Field(True, validation_alias="SOPBOT_ARCHIVE_READER")
    # How often the reader looks without a msgaudit_notify (WeCom sends one at most every 15 s).
    archive_sweep_s: float = Field(60.0, validation_alias="SOPBOT_ARCHIVE_SWEEP_S", gt=0)
    # WeCom keeps archive data for days only (3 to be safe): /healthz fails, and the lag gauge
    # says so, when the reader has not caught up for this long.
    archive_max_lag_h: float = Field(12.0, validation_alias="SOPBOT_ARCHIVE_MAX_LAG_H", gt=0,
                                     le=72)
    # Message text is kept this long (evidence, hot questions' examples); rollups stay.
    archive_text_days: float = Field(30.0, validation_alias="SOPBOT_ARCHIVE_TEXT_DAYS", gt=0)
    # The SDK's own network settings (it talks to WeCom itself): an optional proxy.
    archive_proxy: SecretStr | None = Field(None, validation_alias="SOPBOT_ARCHIVE_PROXY")
    # Rewards (sop_flows/koc.yaml) an operator approved are POSTed here, signed with the secret
    # (docs/koc.md); unset: operators mark them issued by hand.
    koc_webhook_url: str | None = Field(None, validation_alias="SOPBOT_KOC_WEBHOOK_URL",
                                        pattern=r"^https?://[^\s]+$", max_length=2048)
    koc_webhook_secret: SecretStr | None = Field(None, validation_alias="SOPBOT_KOC_WEBHOOK_SECRET",
                                                 min_length=16)

    @field_validator("callback_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not AES_KEY_PATTERN.fullmatch(raw):
            raise ValueError(f"must be exactly 43 characters of A-Z, a-z, 0-9 (got {len(raw)})")
        return value

    @field_validator("api_base", "public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("operators", mode="before")
    @classmethod
    def _split_operators(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        items = tuple(part.strip() for part in value.split(",") if part.strip())
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError("must be IP addresses or networks (10.0.0.0/8), "
                                 f"comma-separated; {item[:45]!r} is neither") from None
        return items

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"auto", "json", "console"}:
            raise ValueError("must be auto, json or console")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _rates(cls, value: str) -> str:
        parse_rates(value)
        return value

    @field_validator("robots")
    @classmethod
    def _robots(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _parse_robots(value.get_secret_value())
        return value

    @field_validator("archive_keys")
    @classmethod
    def _archive_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_archive_keys(value.get_secret_value())
        return value

    @field_validator("archive_source")
    @classmethod
    def _archive_source(cls, value: str) -> str:
        if value not in {"sdk", "simulator"}:
            raise ValueError("must be sdk or simulator")
        return value

    @model_validator(mode="after")
    def _archive_keys_for_the_sdk(self) -> Settings:
        if self.archive_secret is not None and self.archive_source == "sdk" and \
                not self.archive_keys and not self.builtin_simulator:
            raise ValueError("SOPBOT_ARCHIVE_KEYS: required with WECOM_ARCHIVE_SECRET (the "
                             "private key of each publickey_ver; none would quarantine every "
                             "record)")
        return self

    @model_validator(mode="after")
    def _koc_webhook_signed(self) -> Settings:
        if (self.koc_webhook_url is None) != (self.koc_webhook_secret is None):
            raise ValueError("SOPBOT_KOC_WEBHOOK_URL and SOPBOT_KOC_WEBHOOK_SECRET go together: "
                             "the platform checks every reward's signature")
        return self

    @property
    def builtin_simulator(self) -> bool:
        """No WeCom secret and WeCom's own address: `serve` runs the simulator built into it
        (app/faces/sim/embedded.py), whose archive the service then reads."""
        secrets = (self.agent_secret, self.contact_secret_raw, self.kf_secret_raw)
        return all(secret is None for secret in secrets) and self.api_base == DEFAULT_API_BASE

    @property
    def archive_private_keys(self) -> dict[int, str]:
        return parse_archive_keys(self.archive_keys.get_secret_value()) if self.archive_keys \
            else {}

    @property
    def robot_keys(self) -> dict[str, str]:
        return _parse_robots(self.robots.get_secret_value()) if self.robots else {}

    @property
    def contact_secret(self) -> SecretStr | None:
        return self.contact_secret_raw or self.agent_secret

    @property
    def kf_secret(self) -> SecretStr | None:
        return self.kf_secret_raw or self.agent_secret

    def secret_values(self) -> list[str]:
        """Every secret in force, so the log redactor can blank them wherever they appear."""
        secrets = [self.callback_token, self.callback_aes_key, self.agent_secret,
                   self.contact_secret_raw, self.kf_secret_raw, self.secret_key, self.api_key,
                   self.sim_key, self.archive_secret, self.archive_keys, self.archive_proxy,
                   self.koc_webhook_secret]
        values = [s.get_secret_value() for s in secrets if s and s.get_secret_value()]
        values += list(self.robot_keys.values()) + list(self.archive_private_keys.values())
        password = make_url(self.database_url).password
        return [*values, str(password)] if password else values


def _parse_robots(text: str) -> dict[str, str]:
    robots: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, key = item.partition("=")
        if not sep or not name.strip() or not key.strip():
            # Never echo the item: it holds a key.
            raise ValueError("must be NAME=WEBHOOK_KEY pairs separated by commas")
        robots[name.strip()] = key.strip()
    return robots


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], env_file: Path | None = None, **overrides: Any) -> S:
    """Build settings or raise ConfigError with one line naming the first bad variable."""
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"env file {env_file} does not exist")
    try:
        kwargs: dict[str, Any] = {"_env_file": env_file} if env_file else {}
        return cls(**kwargs, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc)) from None


def describe_error(exc: ValidationError) -> str:
    """One line per the first error: variable name and what is wrong, never the value."""
    first = exc.errors(include_input=False, include_url=False)[0]
    variable = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "missing":
        return f"{variable} is not set"
    reason = first["msg"].removeprefix("Value error, ")
    return f"{variable}: {reason}"
