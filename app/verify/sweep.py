"""Verification photos nobody refers to any more are deleted.

A photo is written before the transaction that records it commits (the form's submission, the
kf reader's page): when that transaction fails, or a dialog dies in a way that skips its own
clean-up, the file stays behind with no row naming it. Files younger than a day are left alone,
since their transaction may still be on its way; so are the photos named by a verification, an
open kf dialog, or an inbox row not handled yet (a fetched picture waits there for its handler).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import Database
from app.engine.inbox.models import DONE, InboxEvent
from app.engine.wecom.kf_events import PHOTO
from app.kf.models import KfDialog
from app.verify.models import Verification
from app.verify.photos import discard

PHOTO_KIND = "kf.image"  # KfPulled.kind of the pictures the kf reader fetches (app/kf/reader.py)
MIN_AGE = timedelta(days=1)


async def sweep_orphan_photos(db: Database, directory: Path, now: datetime,
                              min_age: timedelta = MIN_AGE) -> list[str]:
    """Delete the old photo files no row names; returns their names."""
    old = await asyncio.to_thread(_files_before, directory, now - min_age)
    if not old:
        return []
    async with db.reader() as session:
        orphans = old - await _named(session) - await _awaited(session)
    await asyncio.to_thread(discard, sorted(orphans), directory)
    return sorted(orphans)


def _files_before(directory: Path, cutoff: datetime) -> set[str]:
    if not directory.is_dir():
        return set()
    limit = cutoff.timestamp()
    return {p.name for p in directory.iterdir() if p.is_file() and p.stat().st_mtime < limit}


async def _named(session: AsyncSession) -> set[str]:
    names: set[str] = set()
    for photos in await session.scalars(select(Verification.photos)):
        names.update(photos or ())
    for stored in await session.scalars(select(KfDialog.photos)):
        names.update(json.loads(stored or "[]"))
    return names


async def _awaited(session: AsyncSession) -> set[str]:
    """The photos the kf reader fetched into inbox rows not handled yet (pending, or parked for
    a retry): one read of those rows, not a search of every payload for every file."""
    payloads = await session.scalars(select(InboxEvent.payload).where(
        InboxEvent.kind == PHOTO_KIND, InboxEvent.status != DONE))
    return {name for payload in payloads if (name := json.loads(payload).get(PHOTO))}
