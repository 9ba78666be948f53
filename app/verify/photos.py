"""Verification photos: the real type from the first bytes (never the name or the browser's
content type, both chosen by the client), a size limit, and random names on disk; once stored,
each is decoded (bounded) for its size in pixels and hashed (app/verify/checks.py uses both)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

MAX_PHOTOS = 3
FORMATS = ["JPEG", "PNG", "WEBP"]  # what image_type lets in; Pillow tries no other decoder
# Why a stored photo could not be measured (Inspected.problem).
UNREADABLE = "unreadable"  # not a decodable image, or its file is gone
TOO_MANY_PIXELS = "too_many_pixels"  # a decompression bomb, or simply too big: not decoded
# Submissions decoded at once, process-wide: each decode may hold max_pixels × 4 bytes, so a burst
# of uploads waits its turn here instead of multiplying the memory (and the 2 cores' time).
_DECODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="photo-decode")


class PhotoError(ValueError):
    """`kind` names the errors text in sop_flows/verify.yaml."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Photo:
    data: bytes
    ext: str


def megabytes(size: int) -> str:
    """A size as the member reads it: 5 for 5 MB, 0.5 for half of one."""
    return f"{round(size / (1024 * 1024), 1):g}"


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


def chosen(uploads: Sequence[object]) -> list[UploadFile]:
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


@dataclass(frozen=True)
class Inspected:
    """A stored photo as the checks see it: its content hash, and its size when decoded."""

    name: str
    sha256: str  # "" when the file could not be read
    width: int | None = None
    height: int | None = None
    problem: str | None = None  # UNREADABLE or TOO_MANY_PIXELS


async def inspect(names: list[str], directory: Path, max_pixels: int) -> list[Inspected]:
    """Each stored photo hashed and decoded, in one of _DECODERS' threads (decoding takes CPU
    time and memory; the threads bound both)."""
    return await asyncio.get_running_loop().run_in_executor(
        _DECODERS, lambda: [_inspect(directory / n, max_pixels) for n in names])


def _inspect(path: Path, max_pixels: int) -> Inspected:
    try:
        data = path.read_bytes()
    except OSError:
        return Inspected(path.name, "", problem=UNREADABLE)
    digest = hashlib.sha256(data).hexdigest()
    try:
        return _decoded(path.name, digest, data, max_pixels)
    except Exception:  # noqa: BLE001 - a malformed file raises anything; it is a reason, not a 500
        return Inspected(path.name, digest, problem=UNREADABLE)


def _decoded(name: str, digest: str, data: bytes, max_pixels: int) -> Inspected:
    """Decode only after the header's size is known to be under max_pixels: a small file may
    claim a huge image (a decompression bomb). No warning filter is set for that (the filters
    are the whole process's, and this runs in a thread): the explicit size check is the guard;
    Pillow's own bomb error (past 2 × Image.MAX_IMAGE_PIXELS), or its warning where the process
    makes warnings errors, says the same."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Inspected(name, digest, problem=TOO_MANY_PIXELS)
    with image:
        width, height = image.size
        if width * height > max_pixels:
            return Inspected(name, digest, width, height, TOO_MANY_PIXELS)
        # JPEG: decode at 1/4 scale, cheaper; at least 1 px, or a sliver (2×600) divides by zero
        # and would read as unreadable instead of too small.
        image.draft("RGB", (max(1, width // 4), max(1, height // 4)))
        image.load()  # reads every byte: a truncated or corrupt image fails here
    return Inspected(name, digest, width, height)
