"""Logs: JSON lines, phones masked, secrets blanked (also inside tracebacks)."""

from __future__ import annotations

import json

import pytest
import structlog

from app.engine.logs import Redactor, configure_logging, get_logger, mask_phones
from tests.conftest import AES_KEY, TOKEN


@pytest.mark.parametrize(("raw", "masked"), [
    ("13812345678", "138****5678"),
    ("call 13812345678 or +86 19912345678.", "call 138****5678 or +86 199****5678."),
    ("order 2381234567890", "order 2381234567890"),  # 13 digits: not a phone
    ("12345678901", "12345678901"),  # 12x is not a mobile prefix
    ("+8613812345678", "+86138****5678"),
    ("tel: 86 138 1234 5678", "tel: 86 138****5678"),
    ("138-1234-5678", "138****5678"),
    ("加我１３８１２３４５６７８", "加我138****5678"),  # full-width digits, as typed on a phone
])
def test_mask_phones(raw: str, masked: str) -> None:
    assert mask_phones(raw) == masked


def test_redactor_blanks_secret_keys_and_values() -> None:
    redact = Redactor(["supersecretvalue"])
    event = redact(None, "info", {"event": "x", "agent_secret": "abc", "access_token": "t",
                                  "note": "leaked supersecretvalue and 13912345678",
                                  "count": 3})
    assert event == {"event": "x", "agent_secret": "***", "access_token": "***",
                     "note": "leaked *** and 139****5678", "count": 3}


def test_configured_logs_are_json_and_clean(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json", secrets=[TOKEN, AES_KEY])
    log = get_logger("test")
    with structlog.contextvars.bound_contextvars(callback_id="cb123"):
        try:
            raise ValueError(f"bad token {TOKEN} for 13700001111")
        except ValueError:
            log.exception("boom", detail=f"key={AES_KEY}")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "boom" and record["callback_id"] == "cb123"
    assert record["level"] == "error"
    assert TOKEN not in line and AES_KEY not in line and "13700001111" not in line
    assert "137****1111" in record["exception"]
    assert record["detail"] == "key=***"


def test_debug_is_filtered_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    get_logger("test").debug("hidden")
    get_logger("test").info("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err and "shown" in err
