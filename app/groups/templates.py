"""`sopbot templates sync`: the group welcome template of every segment, kept as declared in
sop_flows/group_welcome.yaml: created when new, edited when its declaration changed (a
fingerprint of what was sent tells, without asking WeCom), deleted when no longer declared.
Each answer is committed at once, and one template's failure does not stop the others."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Required, TypedDict

from sqlalchemy import delete, select

from app.engine.db import Database, utcnow
from app.engine.logs import get_logger
from app.engine.wecom.api import Link, Text
from app.engine.wecom.api_outreach import (
    AddGroupWelcomeTemplate,
    DelGroupWelcomeTemplate,
    EditGroupWelcomeTemplate,
)
from app.engine.wecom.client import WeComClient
from app.engine.wecom.errors import ApiError, WeComError
from app.groups.models import WelcomeTemplate
from app.groups.sources import GroupSources

log = get_logger("sopbot.groups.templates")
NOT_FOUND = 40058  # WeCom's "invalid template_id" when a template is gone already


@dataclass(frozen=True)
class Wanted:
    segment: str
    material: dict[str, Any]  # text and link, as sent

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.material, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def wanted(flows: GroupSources) -> list[Wanted]:
    result = []
    for segment, parts in flows.group_welcome.templates.items():
        label = flows.routing.segments[segment].label
        material: dict[str, Any] = {"text": {"content": flows.group_welcome.text_for(segment,
                                                                                      label)}}
        if parts.link is not None:
            material["link"] = parts.link.model_dump(exclude_none=True)
        result.append(Wanted(segment, material))
    return result


async def sync_templates(db: Database, wecom: WeComClient, flows: GroupSources) -> list[str]:
    """One line per template: created, edited, unchanged, deleted or failed."""
    async with db.reader() as session:
        stored = {row.segment: row for row in await session.scalars(select(WelcomeTemplate))}
    lines = []
    for want in wanted(flows):
        try:
            lines.append(await _sync_template(db, wecom, want, stored.pop(want.segment, None)))
        except WeComError as exc:
            log.warning("welcome_template_sync_failed", segment=want.segment, error=str(exc))
            lines.append(f"failed    {want.segment}: {exc}")
    for row in stored.values():  # no longer declared
        lines.append(await _delete(db, wecom, row))
    return lines


class _Material(TypedDict, total=False):
    """A welcome template's text and its link card, if it has one."""

    text: Required[Text]
    link: Link


async def _sync_template(db: Database, wecom: WeComClient, want: Wanted,
                    row: WelcomeTemplate | None) -> str:
    fields: _Material = {"text": Text(**want.material["text"])}
    if "link" in want.material:
        fields["link"] = Link(**want.material["link"])
    if row is None:
        template_id = (await wecom.call(AddGroupWelcomeTemplate(**fields))).template_id
        log.info("welcome_template_created", segment=want.segment, template_id=template_id)
        await _save(db, want, template_id)
        return f"created   {want.segment} {template_id}"
    if row.fingerprint == want.fingerprint:
        return f"unchanged {want.segment} {row.template_id}"
    try:
        await wecom.call(EditGroupWelcomeTemplate(template_id=row.template_id, **fields))
    except ApiError as exc:
        if exc.errcode != NOT_FOUND:
            raise
        # Deleted in the admin console meanwhile: make it again.
        log.warning("welcome_template_gone", segment=want.segment, template_id=row.template_id)
        template_id = (await wecom.call(AddGroupWelcomeTemplate(**fields))).template_id
        await _save(db, want, template_id)
        return f"created   {want.segment} {template_id}"
    await _save(db, want, row.template_id)
    return f"edited    {want.segment} {row.template_id}"


async def _save(db: Database, want: Wanted, template_id: str) -> None:
    async with db.unit_of_work() as session:
        row = await session.scalar(select(WelcomeTemplate).where(
            WelcomeTemplate.segment == want.segment))
        if row is None:
            session.add(WelcomeTemplate(segment=want.segment, template_id=template_id,
                                        fingerprint=want.fingerprint, synced_at=utcnow()))
        else:
            row.template_id, row.fingerprint, row.synced_at = (
                template_id, want.fingerprint, utcnow())


async def _delete(db: Database, wecom: WeComClient, row: WelcomeTemplate) -> str:
    try:
        await wecom.call(DelGroupWelcomeTemplate(template_id=row.template_id))
    except ApiError as exc:
        if exc.errcode != NOT_FOUND:
            log.warning("welcome_template_delete_failed", segment=row.segment, error=str(exc))
            return f"failed    {row.segment}: {exc}"
    except WeComError as exc:
        return f"failed    {row.segment}: {exc}"
    async with db.unit_of_work() as session:
        await session.execute(delete(WelcomeTemplate).where(WelcomeTemplate.id == row.id))
    log.info("welcome_template_deleted", segment=row.segment, template_id=row.template_id)
    return f"deleted   {row.segment} {row.template_id}"


def stored_lines(rows: list[WelcomeTemplate]) -> list[str]:
    if not rows:
        return ["no group welcome templates stored; run `sopbot templates sync`"]
    return [f"{row.segment:<16} {row.template_id} synced {row.synced_at:%Y-%m-%d %H:%M}Z"
            for row in rows]
