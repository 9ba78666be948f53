"""The errcode → exception tree (wecom-reference §7): which class each code becomes, and what
the exceptions say."""

from __future__ import annotations

import pytest

from app.engine.wecom import errors
from app.engine.wecom.errors import (
    ApiError,
    ConfigurationError,
    FinalError,
    InvalidRequest,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    Retryable,
    TokenRejected,
    TransportError,
    WeComError,
    error_for,
)

API = "externalcontact/send_welcome_msg"


@pytest.mark.parametrize(("errcode", "cls"), [
    (-1, Retryable),
    (45033, Retryable),
    (41063, Retryable),
    (45009, RateLimited),
    (40014, TokenRejected),
    (42001, TokenRejected),
    (40001, ConfigurationError),
    (40013, ConfigurationError),
    (40091, ConfigurationError),
    (48002, ConfigurationError),
    (60011, ConfigurationError),
    (60020, ConfigurationError),
    (93000, ConfigurationError),
    (95017, ConfigurationError),
    (41001, InvalidRequest),
    (40008, InvalidRequest),
    (40058, InvalidRequest),
    (44004, InvalidRequest),
    (81017, InvalidRequest),  # groupchat/list without owner_filter: our request must change
    (41050, FinalError),
    (41051, FinalError),
    (84061, FinalError),
    (81013, FinalError),
    (12345, FinalError),  # not in any table: final, as the official guide says
])
def test_each_code_maps_to_its_class(errcode: int, cls: type[ApiError]) -> None:
    exc = error_for(API, errcode, "msg")
    assert type(exc) is cls
    assert (exc.api, exc.errcode, exc.errmsg) == (API, errcode, "msg")


@pytest.mark.parametrize("errcode", [41051, 84061, 41050, 12345])
def test_final_codes_are_not_invalid_requests(errcode: int) -> None:
    # 41051 (another app sent the welcome) is business as usual, not a bug in our request.
    assert not isinstance(error_for(API, errcode), InvalidRequest)


def test_the_tree() -> None:
    assert issubclass(RateLimited, Retryable)
    assert issubclass(InvalidRequest, FinalError)
    for cls in (Retryable, TokenRejected, ConfigurationError, FinalError):
        assert issubclass(cls, ApiError)
        assert not issubclass(cls, TransportError)
    for cls in (NotSent, OutcomeUnknown):
        assert issubclass(cls, TransportError)
        assert not issubclass(cls, ApiError)
    assert issubclass(ApiError, WeComError) and issubclass(TransportError, WeComError)


def test_rate_limited_waits_for_the_window() -> None:
    exc = error_for("webhook/send", 45009, "api freq out of limit")
    assert isinstance(exc, RateLimited)
    assert exc.retry_after_s == errors.RATE_WINDOW_S == 60.0


def test_message_names_the_api_and_the_code() -> None:
    assert str(error_for(API, 41051, "already sent")) == f"{API}: errcode 41051: already sent"
    assert str(error_for(API, -1)) == f"{API}: errcode -1"


def test_configuration_errors_carry_a_hint() -> None:
    exc = error_for("gettoken", 40001, "invalid credential")
    assert isinstance(exc, ConfigurationError)
    assert "WECOM_AGENT_SECRET" in exc.hint
    assert str(exc).endswith(f"(fix: {exc.hint})")


def test_untrusted_ip_hint() -> None:
    exc = error_for("message/send", 60020, "not allow to access from your ip")
    assert isinstance(exc, ConfigurationError)
    assert "企业可信IP" in exc.hint
    assert "企业可信IP" in str(exc)


def test_every_configuration_code_has_its_own_hint() -> None:
    fallback = "see the WeCom error code reference"
    for errcode in errors.CONFIGURATION:
        exc = error_for("any", errcode)
        assert isinstance(exc, ConfigurationError)
        assert exc.hint != fallback


def test_code_sets_do_not_overlap() -> None:
    sets = [errors.RETRYABLE, errors.TOKEN_REJECTED, errors.CONFIGURATION,
            errors.INVALID_REQUEST, {45009}]
    assert sum(len(s) for s in sets) == len(set().union(*sets))


def test_transport_errors_name_the_api() -> None:
    exc = OutcomeUnknown("kf/send_msg", "no answer")
    assert exc.api == "kf/send_msg"
    assert str(exc) == "kf/send_msg: no answer"
