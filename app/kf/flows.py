"""sop_flows/kf.yaml: what sopbot says in 微信客服 (the keyword replies are in keywords.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.engine.placeholders import allow_placeholders

SCENE_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"


class KfWelcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Sent through the enter_session welcome code (one message, within 20 s). By the scene of
    # the kf link the customer came through (kf/add_contact_way), else the default.
    default: str = Field(min_length=1, max_length=2000)
    scenes: dict[str, str] = {}

    _texts = field_validator("default")(allow_placeholders())

    @field_validator("scenes")
    @classmethod
    def _scenes(cls, value: dict[str, str]) -> dict[str, str]:
        for scene, text in value.items():
            if not scene or len(scene) > 32 or set(scene) - set(SCENE_CHARS):
                raise ValueError(f"scene {scene!r}: 1-32 of [0-9a-zA-Z_-]")
            if not text.strip() or len(text) > 2000:
                raise ValueError(f"scenes.{scene}: a text of 1-2000 characters")
        return value

    def for_scene(self, scene: str | None) -> str:
        return self.scenes.get(scene or "", self.default)


class KfFlows(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    welcome: KfWelcome
