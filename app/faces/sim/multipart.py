"""Just enough multipart/form-data parsing for media/upload (one file part).

A small parser here avoids a python-multipart dependency for one simulator endpoint.
"""

from __future__ import annotations

import re

from app.faces.sim.state import Upload

_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^;\s]+)')


class MultipartError(ValueError):
    """The body does not match its multipart Content-Type."""


def _params(header: str) -> dict[str, str]:
    return {(m[1] or m[3]).lower(): (m[2] if m[1] else m[4]) for m in _PARAM.finditer(header)}


def read_upload(content_type: str, body: bytes, field: str) -> Upload | None:
    """The part named `field`, or None when there is none."""
    boundary = _params(content_type).get("boundary")
    if not boundary:
        raise MultipartError("no boundary")
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("part without headers")
        headers = _headers(head.decode("utf-8", "replace"))
        disposition = _params(headers.get("content-disposition", ""))
        if disposition.get("name") == field:
            return Upload(disposition.get("filename", ""), headers.get("content-type", ""),
                          data.removesuffix(b"\r\n"))
    return None


def _headers(block: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in block.split("\r\n") if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}
