"""sop_flows/verify.yaml: what the verification pages say, the regions offered, and which
submissions are approved without an operator."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.engine.placeholders import allow_placeholders
from app.members.models import IDENTITY_TYPES

CONSUMER = "consumer"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormTexts(Strict):
    title: str
    intro: str
    phone_label: str
    identity_label: str
    region_label: str
    region_placeholder: str
    photos_label: str
    photos_hint: str
    submit: str

    _hint = field_validator("photos_hint")(allow_placeholders("max_photos", "max_mb"))


class ErrorTexts(Strict):
    phone_invalid: str
    identity_invalid: str
    region_invalid: str
    photos_missing: str
    photos_too_many: str
    photo_not_image: str
    photo_too_large: str

    _large = field_validator("photo_too_large")(allow_placeholders("max_mb"))
    _many = field_validator("photos_too_many")(allow_placeholders("max_photos"))


class PageTexts(Strict):
    """Whole pages: a member's status, and what a bad link shows."""

    pending: str
    approved: str  # approved, the group not known yet
    approved_join: str  # approved, with the segment's group QR code below the text
    rejected: str
    consumer: str
    link_invalid: str
    link_expired: str
    unknown_member: str
    too_large: str
    cross_site: str  # a POST another site's page made the member's browser send

    # Above the form again, for a member who may correct a rejected submission.
    rejected_retry: str

    _rejected = field_validator("rejected", "rejected_retry")(allow_placeholders("reason"))
    _join = field_validator("approved_join")(allow_placeholders("segment"))


class DialogTexts(Strict):
    """The verification dialog in 微信客服 (the same checks and queue as the H5 form)."""

    ask_phone: str
    ask_identity: str
    ask_region: str
    region_invalid: str
    ask_photos: str
    photo_received: str
    photo_bad: str
    photo_download_failed: str
    need_photo: str
    cancelled: str
    expired: str
    not_a_friend: str

    _received = field_validator("photo_received")(allow_placeholders("count", "left"))
    _bad = field_validator("photo_bad")(allow_placeholders("reason"))


class Dialog(Strict):
    start_words: tuple[str, ...] = Field(("认证", "商家认证", "我要认证"), min_length=1)
    cancel_words: tuple[str, ...] = Field(("取消",), min_length=1)
    done_words: tuple[str, ...] = Field(("完成", "好了"), min_length=1)
    # A dialog untouched this long is over (found out when the customer writes again).
    timeout_minutes: int = Field(30, ge=1, le=1440)
    texts: DialogTexts


class AutoApprove(Strict):
    # A phone found in the platform's user directory is enough for these identity types.
    directory_match: tuple[str, ...] = ()

    @field_validator("directory_match")
    @classmethod
    def _business_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for identity in value:
            if identity not in IDENTITY_TYPES or identity == CONSUMER:
                allowed = ", ".join(t for t in IDENTITY_TYPES if t != CONSUMER)
                raise ValueError(f"{identity!r} cannot be auto-approved (allowed: {allowed})")
        return value


class PhotoChecks(Strict):
    """What the photos of a submission approved by rule must pass (app/verify/checks.py)."""

    min_width: int = Field(300, ge=1, le=10_000)
    min_height: int = Field(300, ge=1, le=10_000)
    # A photo whose header claims more pixels is never decoded: a decompression bomb is a small
    # file that claims a huge image. A decode holds about 4 bytes a pixel: 24 M (a 4000×6000
    # phone photo) is ~100 MB, and at most two decode at once (app/verify/photos.py).
    max_pixels: int = Field(24_000_000, ge=10_000, le=200_000_000)


class ReviewNotes(Strict):
    """Why a submission waits for a reviewer (operators read these: console and /review)."""

    phone_held: str
    platform_id_held: str
    photo_unreadable: str
    photo_too_many_pixels: str
    photo_small: str
    photo_reused: str
    command_held: str  # /review approve of what another member holds: what to send instead

    _held = field_validator("phone_held")(allow_placeholders("member_id"))
    _pid = field_validator("platform_id_held")(
        allow_placeholders("member_id", "platform_user_id"))
    _photo = field_validator("photo_unreadable", "photo_too_many_pixels")(
        allow_placeholders("photo"))
    _small = field_validator("photo_small")(
        allow_placeholders("photo", "width", "height", "min_width", "min_height"))
    _reused = field_validator("photo_reused")(
        allow_placeholders("photo", "member_id", "verification_id"))
    _command = field_validator("command_held")(allow_placeholders("id", "members"))


class VerifyFlows(Strict):
    form: FormTexts
    errors: ErrorTexts
    pages: PageTexts
    # The label members see for each identity type; every type must have one.
    identity_types: dict[str, str]
    regions: tuple[str, ...] = Field(min_length=1)
    # The reason stored on a consumer's rejection (operators read it, members do not).
    consumer_reason: str = Field(min_length=1, max_length=200)
    auto_approve: AutoApprove = AutoApprove()
    photo_checks: PhotoChecks = PhotoChecks()
    review_notes: ReviewNotes
    # A member a reviewer turned down may correct and submit again, up to this many submissions
    # in all (consumers, turned away by rule, may not).
    max_submissions: int = Field(3, ge=1, le=10)
    # The reasons a reviewer picks from when rejecting in the console; the member reads the
    # reason on their status page, so these are member-facing texts like the rest of this file.
    review_reasons: tuple[str, ...] = ()
    dialog: Dialog

    @field_validator("review_reasons")
    @classmethod
    def _reasons(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a review reason is listed twice")
        if any(not reason.strip() or len(reason) > 200 for reason in value):
            raise ValueError("a review reason must be 1-200 characters")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a region is listed twice")
        if any(not region.strip() or len(region) > 32 for region in value):
            raise ValueError("a region must be 1-32 characters")
        return value

    @model_validator(mode="after")
    def _all_identity_types(self) -> VerifyFlows:
        if set(self.identity_types) != set(IDENTITY_TYPES):
            raise ValueError(f"identity_types must label exactly {', '.join(IDENTITY_TYPES)}")
        return self
