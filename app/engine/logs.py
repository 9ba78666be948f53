"""Structured logs: one JSON object per line, the callback id bound per request and per event.

Two safety nets run on every line: known secret values are blanked wherever they appear, and
mainland mobile numbers are masked as 138****1234 (DESIGN.md §8).
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

# A mainland mobile number, optionally after +86/86 and with spaces or dashes between groups.
PHONE = re.compile(r"(?<![\d+])((?:\+?86[- ]?)?1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
SECRET_KEYS = re.compile(r"secret|token|password|aes_key|encodingaeskey", re.IGNORECASE)


def mask_phones(text: str) -> str:
    """138****1234 for every 11-digit mainland mobile number in the text."""
    if any("０" <= ch <= "９" for ch in text):  # full-width digits: what the rules read too
        text = unicodedata.normalize("NFKC", text)
    return PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class Redactor:
    """A structlog processor: masks phones and blanks secrets in every value of a log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        for key, value in list(event.items()):
            if SECRET_KEYS.search(key):
                event[key] = "***"
            elif isinstance(value, str):
                event[key] = self.clean(value)
            elif not isinstance(value, int | float | bool | type(None)):
                event[key] = self.clean(str(value))
        return event

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return mask_phones(text)


def configure_logging(level: str = "info", fmt: str = "auto", secrets: Iterable[str] = ()) -> None:
    """Set up structlog (and route the standard library's loggers through the same renderer)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (structlog.processors.JSONRenderer(ensure_ascii=False) if use_json
                     else structlog.dev.ConsoleRenderer(colors=False))
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks are rendered before redaction so they are cleaned too.
        structlog.processors.format_exc_info,
        Redactor(secrets),
    ]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # httpx logs every request's full URL at INFO, and WeCom URLs carry the access token or a
    # robot's webhook key: keep those loggers at WARNING whatever the app's level.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


class StderrLogger:
    """Writes each rendered line to whatever sys.stderr is at that moment (test capture,
    daemon redirect), so bound loggers can be cached safely."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: Any) -> StderrLogger:
    return StderrLogger()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
