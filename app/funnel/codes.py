"""`sopbot codes sync`: one 联系我 code per (channel, slot) of sop_flows/funnel.yaml.

WeCom does not show API-made codes in the admin console, so the contact_code table is the only
record of them: each code's row is committed as soon as WeCom has answered for it, and one
code's failure never stops the others. A code is updated only when what would be sent for it
(staff, type, state, remark) changed, which the row's fingerprint tells without asking WeCom.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from app.engine.db import Database, utcnow
from app.engine.logs import get_logger
from app.engine.wecom.api_contact import (
    AddContactWay,
    DelContactWay,
    GetContactWay,
    UpdateContactWay,
)
from app.engine.wecom.client import WeComClient
from app.engine.wecom.errors import WeComError
from app.funnel.flows import FunnelFlows, state_of
from app.funnel.models import ContactCode

log = get_logger("sopbot.funnel.codes")

QR_SCENE = 2
REMARK_MAX = 30  # WeCom's limit on a 联系我 remark

CREATED, UPDATED, UNCHANGED, FAILED, STALE, DELETED = (
    "created", "updated", "unchanged", "failed", "stale", "deleted")


@dataclass(frozen=True)
class Wanted:
    """The code one (channel, slot) should have, as it would be sent to WeCom."""

    state: str
    channel: str
    slot: str | None
    fields: dict[str, Any]  # type, scene, state, remark, user, skip_verify

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CodeResult:
    outcome: str  # one of CREATED ... DELETED
    state: str
    qr_code: str = ""
    error: str = ""

    def line(self) -> str:
        if self.outcome == FAILED:
            return f"{FAILED:<9} {self.state}: {self.error}"
        if self.outcome == STALE:
            return (f"{STALE:<9} {self.state} {self.qr_code} (no longer in funnel.yaml; "
                    "--delete-stale deletes it in WeCom)")
        return f"{self.outcome:<9} {self.state} {self.qr_code}"


def wanted_codes(funnel: FunnelFlows) -> list[Wanted]:
    """What every declared (channel, slot) should get, in declaration order."""
    wanted = []
    for channel, slot in funnel.codes():
        state, staff = state_of(channel, slot), list(funnel.channels[channel].staff)
        fields = {"type": 1 if len(staff) == 1 else 2, "scene": QR_SCENE, "state": state,
                  "remark": f"sopbot {state}"[:REMARK_MAX], "user": staff, "skip_verify": True}
        wanted.append(Wanted(state, channel, slot, fields))
    return wanted


async def stored_codes(db: Database) -> list[ContactCode]:
    async with db.reader() as session:
        rows = await session.scalars(select(ContactCode).order_by(ContactCode.state))
        return list(rows)


async def sync_codes(db: Database, wecom: WeComClient, funnel: FunnelFlows, *,
                     delete_stale: bool = False) -> list[CodeResult]:
    """Create, update or leave alone every declared code; then list (or delete) stale ones."""
    stored = {row.state: row for row in await stored_codes(db)}
    results = []
    for want in wanted_codes(funnel):
        try:
            results.append(await _sync_code(db, wecom, want, stored.pop(want.state, None)))
        except (WeComError, ValidationError, CodeProblem) as exc:
            results.append(_failure(want.state, exc))
    for row in stored.values():  # what is left is no longer declared
        results.append(await _delete(db, wecom, row) if delete_stale
                       else CodeResult(STALE, row.state, row.qr_code))
    return results


class CodeProblem(Exception):
    """A code that cannot be synced as declared; the message tells the operator why."""


def _failure(state: str, exc: Exception) -> CodeResult:
    message = (f"invalid declaration: {exc.errors()[0]['msg']}" if isinstance(exc, ValidationError)
               else str(exc))
    log.warning("contact_code_sync_failed", state=state, error=message)
    return CodeResult(FAILED, state, error=message)


async def _sync_code(db: Database, wecom: WeComClient, want: Wanted,
                    row: ContactCode | None) -> CodeResult:
    if row is None:
        return await _create(db, wecom, want)
    if row.fingerprint == want.fingerprint:
        return CodeResult(UNCHANGED, want.state, row.qr_code)
    return await _update(db, wecom, want, row)


async def _create(db: Database, wecom: WeComClient, want: Wanted) -> CodeResult:
    answer = await wecom.call(AddContactWay(**want.fields))
    # Logged before storing: should the row not land, the log still holds the config_id (the
    # admin console cannot show API-made codes).
    log.info("contact_code_created", state=want.state, config_id=answer.config_id)
    qr_code = answer.qr_code or await _qr_code(wecom, answer.config_id)
    async with db.unit_of_work() as session:
        session.add(ContactCode(state=want.state, channel=want.channel, slot=want.slot,
                                config_id=answer.config_id, qr_code=qr_code,
                                fingerprint=want.fingerprint, synced_at=utcnow()))
    return CodeResult(CREATED, want.state, qr_code)


async def _update(db: Database, wecom: WeComClient, want: Wanted,
                  row: ContactCode) -> CodeResult:
    stored_type = await _stored_type(wecom, row)
    if stored_type is not None and stored_type != want.fields["type"]:
        # update_contact_way cannot change the type; a new code would make printed QRs useless.
        raise CodeProblem("staff changed between one and several members, which WeCom cannot "
                          "change on an existing code; keep the count on the same side, or "
                          "rename the channel/slot to get a new code")
    fields = {k: v for k, v in want.fields.items() if k not in ("type", "scene")}
    await wecom.call(UpdateContactWay(config_id=row.config_id, **fields))
    qr_code = row.qr_code or await _qr_code(wecom, row.config_id)
    await _save(db, row.id, fingerprint=want.fingerprint, qr_code=qr_code, synced_at=utcnow())
    log.info("contact_code_updated", state=want.state, config_id=row.config_id)
    return CodeResult(UPDATED, want.state, qr_code)


async def _stored_type(wecom: WeComClient, row: ContactCode) -> int | None:
    """The code's type as WeCom has it (the row keeps only a fingerprint)."""
    detail = await wecom.call(GetContactWay(config_id=row.config_id))
    return detail.contact_way.type if detail.contact_way else None


async def _qr_code(wecom: WeComClient, config_id: str) -> str:
    """The QR URL when the add answer lacked it (WeCom documents it for scene 2 only)."""
    detail = await wecom.call(GetContactWay(config_id=config_id))
    if detail.contact_way is None or not detail.contact_way.qr_code:
        raise CodeProblem(f"WeCom gave no QR code for config {config_id}")
    return detail.contact_way.qr_code


async def _save(db: Database, row_id: int, **values: str | datetime) -> None:
    async with db.unit_of_work() as session:
        row = await session.get(ContactCode, row_id)
        assert row is not None, f"contact_code {row_id} vanished during sync"
        for name, value in values.items():
            setattr(row, name, value)


async def _delete(db: Database, wecom: WeComClient, row: ContactCode) -> CodeResult:
    try:
        await wecom.call(DelContactWay(config_id=row.config_id))
    except WeComError as exc:
        return _failure(row.state, exc)
    async with db.unit_of_work() as session:
        await session.execute(delete(ContactCode).where(ContactCode.id == row.id))
    log.info("contact_code_deleted", state=row.state, config_id=row.config_id)
    return CodeResult(DELETED, row.state, row.qr_code)


def list_lines(rows: list[ContactCode]) -> list[str]:
    """`sopbot codes list`: what is stored, one line per code."""
    if not rows:
        return ["no 联系我 codes stored; run `sopbot codes sync`"]
    return [f"{row.state:<30} {row.config_id:<24} {row.qr_code} "
            f"synced {row.synced_at:%Y-%m-%d %H:%M}Z" for row in rows]
