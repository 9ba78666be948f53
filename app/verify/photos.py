"""Verification photos: the real type from the first bytes (never the name or the browser's
content type, both chosen by the client), a size limit, and random names on disk."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

MAX_PHOTOS = 3


class PhotoError(ValueError):
    """`kind` names the errors text in sop_flows/verify.yaml."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Photo:
    data: bytes
    ext: str


def image_type(head: bytes) -> str | None:
    """'jpg', 'png' or 'webp' from the magic bytes; None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


async def read_photos(uploads: list[UploadFile], max_bytes: int) -> list[Photo]:
    """1-3 images of at most `max_bytes` each, or PhotoError."""
    if not uploads:
        raise PhotoError("photos_missing")
    if len(uploads) > MAX_PHOTOS:
        raise PhotoError("photos_too_many")
    return [await _read(upload, max_bytes) for upload in uploads]


async def _read(upload: UploadFile, max_bytes: int) -> Photo:
    data = await upload.read(max_bytes + 1)  # one byte more tells "too large" apart
    if len(data) > max_bytes:
        raise PhotoError("photo_too_large")
    ext = image_type(data[:12])
    if ext is None:
        raise PhotoError("photo_not_image")
    return Photo(data, ext)


def chosen(uploads: list[object]) -> list[UploadFile]:
    """The files really chosen: a browser sends an empty part for an empty file input."""
    return [u for u in uploads if isinstance(u, UploadFile) and (u.filename or u.size)]


async def store(photos: list[Photo], directory: Path) -> list[str]:
    """Write the photos under random names; the names are returned for the database."""
    return await asyncio.to_thread(_write_all, photos, directory)


def _write_all(photos: list[Photo], directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for photo in photos:
        name = f"{secrets.token_hex(16)}.{photo.ext}"
        # "xb": never overwrite, however unlikely a clash of 128 random bits is.
        with (directory / name).open("xb") as handle:
            handle.write(photo.data)
        names.append(name)
    return names


def discard(names: list[str], directory: Path) -> None:
    """Remove photos whose submission was not stored (rolled back or a duplicate)."""
    for name in names:
        (directory / name).unlink(missing_ok=True)


def discard_on_commit(session: AsyncSession, names: list[str], directory: Path) -> None:
    """Remove the photos once the session's transaction commits: a rollback keeps the rows that
    name them, and with them the files (a retried handler needs both)."""
    if names:
        listen(session.sync_session, "after_commit",
               lambda _session: discard(names, directory), once=True)
