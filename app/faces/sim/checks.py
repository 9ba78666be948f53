"""Cheap request validation that answers WeCom's errcodes.

WeCom checks required fields and documented limits before doing anything; 40058 ("invalid
parameter") is its general answer, with a few more specific codes where the docs name them.
"""

from __future__ import annotations

import re
from typing import Any

from app.faces.sim.state import Json, Reject

INVALID = 40058
MSGID_RE = re.compile(r"[0-9A-Za-z_-]{1,32}")


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def need_str(body: Json, key: str, *, max_bytes: int | None = None,
             max_chars: int | None = None, code: int = INVALID) -> str:
    """A non-empty string field within its limits."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Reject(code, f"missing or invalid {key}")
    return check_len(value, key, max_bytes=max_bytes, max_chars=max_chars)


def opt_str(body: Json, key: str, *, max_bytes: int | None = None,
            max_chars: int | None = None, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise Reject(INVALID, f"invalid {key}: must be a string")
    return check_len(value, key, max_bytes=max_bytes, max_chars=max_chars)


def check_len(value: str, key: str, *, max_bytes: int | None = None,
              max_chars: int | None = None, code: int = INVALID) -> str:
    if max_bytes is not None and utf8_len(value) > max_bytes:
        raise Reject(code, f"{key} exceeds {max_bytes} bytes")
    if max_chars is not None and len(value) > max_chars:
        raise Reject(code, f"{key} exceeds {max_chars} characters")
    return value


def need_int(body: Json, key: str, choices: tuple[int, ...] | None = None,
             default: int | None = None) -> int:
    value = body.get(key, default)
    # bool is an int in Python but not in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject(INVALID, f"missing or invalid {key}")
    if choices is not None and value not in choices:
        raise Reject(INVALID, f"invalid {key}: must be one of {list(choices)}")
    return value


def opt_list(body: Json, key: str, *, max_len: int | None = None) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Reject(INVALID, f"invalid {key}: must be a list")
    if max_len is not None and len(value) > max_len:
        raise Reject(INVALID, f"{key} has more than {max_len} items")
    return value


def need_list(body: Json, key: str, *, max_len: int | None = None, min_len: int = 1) -> list[Any]:
    value = opt_list(body, key, max_len=max_len)
    if len(value) < min_len:
        raise Reject(INVALID, f"{key} needs at least {min_len} item(s)")
    return value


def opt_obj(body: Json, key: str) -> Json | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Reject(INVALID, f"invalid {key}: must be an object")
    return value


def check_msgid(body: Json) -> str | None:
    """The caller's own msgid (kf): ≤32 bytes of [0-9a-zA-Z_-]."""
    msgid = body.get("msgid")
    if msgid is None:
        return None
    if not isinstance(msgid, str) or not MSGID_RE.fullmatch(msgid):
        raise Reject(INVALID, "invalid msgid: up to 32 characters of [0-9a-zA-Z_-]")
    return msgid


def cursor_index(body: Json, key: str = "cursor") -> int:
    """The simulator's cursors are list offsets written as strings; "" or absent is 0."""
    value = body.get(key) or "0"
    if not isinstance(value, str | int) or not str(value).isdigit():
        raise Reject(INVALID, f"invalid {key}")
    return int(value)


def page_limit(body: Json, default: int, maximum: int, required: bool = False) -> int:
    if required and "limit" not in body:
        raise Reject(INVALID, "limit missing")
    limit = need_int(body, "limit", default=default)
    if not 1 <= limit <= maximum:
        raise Reject(INVALID, f"limit must be 1..{maximum}")
    return limit
