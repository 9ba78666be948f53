"""SimSettings: what `sopbot sim` reads from the environment.

Where a value also exists for the bot it has the bot's variable name (WECOM_*), so one .env file
configures both sides. Every value has a default so the simulator runs with no configuration.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.engine.config import AES_KEY_PATTERN

# Sample values only: they belong to no real corp.
DEFAULT_AES_KEY = "SimulatorAesKey0000000000000000000000000001"
DEFAULT_ROBOT_KEY = "sim-robot-key-0001"


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class SimSettings(BaseSettings):
    """The simulated corp: ids, secrets, callback keys, where the bot listens."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    corp_id: str = Field("wwsopbotsim000001", validation_alias="WECOM_CORP_ID", min_length=1)
    callback_token: SecretStr = Field(SecretStr("simCallbackToken"),
                                      validation_alias="WECOM_CALLBACK_TOKEN", min_length=1)
    callback_aes_key: SecretStr = Field(SecretStr(DEFAULT_AES_KEY),
                                        validation_alias="WECOM_CALLBACK_AES_KEY")
    agent_id: int = Field(1000002, validation_alias="WECOM_AGENT_ID")
    agent_secret: SecretStr = Field(SecretStr("sim-agent-secret"),
                                    validation_alias="WECOM_AGENT_SECRET", min_length=1)
    # Unset means "same as the app secret", exactly as the bot treats them.
    contact_secret_raw: SecretStr | None = Field(None, validation_alias="WECOM_CONTACT_SECRET")
    kf_secret_raw: SecretStr | None = Field(None, validation_alias="WECOM_KF_SECRET")
    # The chat archive's own secret (会话内容存档): its token serves only msgaudit/* (WeCom
    # answers 48002 to another app's token there, and to this one elsewhere).
    archive_secret: SecretStr = Field(SecretStr("sim-archive-secret"),
                                      validation_alias="WECOM_ARCHIVE_SECRET", min_length=1)

    host: str = Field("127.0.0.1", validation_alias="SOPBOT_SIM_HOST")
    port: int = Field(8090, validation_alias="SOPBOT_SIM_PORT", ge=0, le=65535)
    bot_url: str = Field("http://127.0.0.1:8000/wecom/callback",
                         validation_alias="SOPBOT_SIM_BOT_URL")
    robots: Annotated[tuple[str, ...], NoDecode] = Field(
        (DEFAULT_ROBOT_KEY,), validation_alias="SOPBOT_SIM_ROBOTS")
    members: Annotated[tuple[str, ...], NoDecode] = Field(
        ("staff01", "staff02", "operator1", "op_alice"), validation_alias="SOPBOT_SIM_MEMBERS")
    kf_accounts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("wkSimKf0000001",), validation_alias="SOPBOT_SIM_KF_ACCOUNTS")
    callback_timeout_s: float = Field(5.0, validation_alias="SOPBOT_SIM_CALLBACK_TIMEOUT_S",
                                      gt=0, le=60)
    seed: int = Field(0, validation_alias="SOPBOT_SIM_SEED")
    # The key of the control, inspection and scenario paths (app/faces/sim/access.py); unset: a new
    # one is generated at start.
    control_key: SecretStr | None = Field(None, validation_alias="SOPBOT_SIM_KEY", min_length=16)

    # The reward webhook's secret (docs/koc.md): the platform stand-in (platform.py) checks each
    # POST's signature with it. The service's variable name, so one .env serves both.
    koc_webhook_secret: SecretStr | None = Field(None, validation_alias="SOPBOT_KOC_WEBHOOK_SECRET",
                                                 min_length=16)

    @field_validator("callback_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not AES_KEY_PATTERN.fullmatch(raw):
            raise ValueError(f"must be exactly 43 characters of A-Z, a-z, 0-9 (got {len(raw)})")
        return value

    @field_validator("bot_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Several URLs, comma-separated, are replicas: callbacks go to each in turn.
        urls = [url.strip() for url in value.split(",")]
        if not all(url.startswith(("http://", "https://")) for url in urls):
            raise ValueError("must start with http:// or https:// (each, if several)")
        return value

    @field_validator("robots", "members", "kf_accounts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split(value)

    @property
    def contact_secret(self) -> SecretStr:
        return self.contact_secret_raw or self.agent_secret

    @property
    def kf_secret(self) -> SecretStr:
        return self.kf_secret_raw or self.agent_secret

    def accepted_secrets(self) -> dict[str, str]:
        """secret value → the app it stands for; gettoken issues one token per secret."""
        pairs = [("archive", self.archive_secret), ("kf", self.kf_secret),
                 ("contact", self.contact_secret), ("agent", self.agent_secret)]
        # Later entries win, so a secret shared by several apps is reported as "agent" (and
        # an archive secret that is another app's too opens no archive, as in WeCom).
        return {secret.get_secret_value(): name for name, secret in pairs}

    def secret_values(self) -> list[str]:
        """Everything the log redactor must blank."""
        values = [self.callback_token, self.callback_aes_key, self.agent_secret,
                  self.contact_secret_raw, self.kf_secret_raw, self.archive_secret,
                  self.control_key, self.koc_webhook_secret]
        return [v.get_secret_value() for v in values if v] + list(self.robots)
