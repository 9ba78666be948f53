"""Corp tags for identity type, channel and region: made once by `sopbot tags sync` (one tag
group per dimension, names from sop_flows/routing.yaml), stored in corp_tag, and put on every
routed member through the outbox (mark_tag: no callback follows, and a resend is harmless)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import Database, utcnow
from app.engine.wecom.api import AddCorpTag, GetCorpTagList, NewTag
from app.engine.wecom.api_outreach import TagGroup
from app.engine.wecom.client import WeComClient
from app.members.models import Member
from app.routing.flows import ROUTED_TYPES, RoutingSources
from app.routing.models import CorpTag

DIMENSIONS = ("identity", "channel", "region")
KOC_TAG = "KOC"  # the tag promoted KOCs carry (dimension "koc", value "koc")


@dataclass(frozen=True)
class Wanted:
    dimension: str
    group_name: str
    labels: dict[str, str]  # value → tag name


def wanted(flows: RoutingSources) -> list[Wanted]:
    groups = flows.routing.tag_groups
    identities = {t: flows.verify.identity_types[t] for t in ROUTED_TYPES}
    channels = flows.funnel.channel_labels()
    regions = {region: region for region in flows.verify.regions}
    wanted = [Wanted("identity", groups.identity, identities),
              Wanted("channel", groups.channel, channels),
              Wanted("region", groups.region, regions)]
    # Only with the recommender programme (app.flows.Flows.koc; other sources have none).
    if getattr(flows, "koc", None) is not None:
        wanted.append(Wanted("koc", groups.koc, {"koc": KOC_TAG}))
    return wanted


async def sync_tags(db: Database, client: WeComClient, flows: RoutingSources) -> list[str]:
    """Create what is missing in WeCom, store every id; one line per dimension."""
    existing = (await client.call(GetCorpTagList())).tag_group
    lines = []
    for want in wanted(flows):
        group = await _ensure(client, want, next(
            (g for g in existing if g.group_name == want.group_name and not g.deleted), None))
        ids = {t.name: t.id for t in group.tag}
        async with db.unit_of_work() as session:
            for value, label in want.labels.items():
                await _store(session, want.dimension, value, ids[label], group.group_id)
        lines.append(f"{want.dimension}: group {want.group_name} ({group.group_id}), "
                     f"{len(want.labels)} tags")
    return lines


async def _ensure(client: WeComClient, want: Wanted, group: TagGroup | None) -> TagGroup:
    """The group with every wanted tag: the missing ones added (a new group if needed)."""
    have = {t.name for t in group.tag} if group else set()
    missing = [label for label in want.labels.values() if label not in have]
    if not missing:
        assert group is not None
        return group
    added = (await client.call(AddCorpTag(
        group_id=group.group_id if group else None,
        group_name=None if group else want.group_name,
        tag=[NewTag(name=label) for label in missing]))).tag_group
    assert added is not None, "add_corp_tag answered no tag_group"
    tags = [*(group.tag if group else []), *added.tag]
    return added.model_copy(update={"tag": tags})


async def _store(session: AsyncSession, dimension: str, value: str, tag_id: str,
                 group_id: str) -> None:
    row = await session.scalar(select(CorpTag).where(CorpTag.dimension == dimension,
                                                     CorpTag.value == value))
    if row is None:
        session.add(CorpTag(dimension=dimension, value=value, tag_id=tag_id, group_id=group_id,
                            synced_at=utcnow()))
    else:
        row.tag_id, row.group_id, row.synced_at = tag_id, group_id, utcnow()


async def koc_tag_id(session: AsyncSession) -> str | None:
    return await session.scalar(select(CorpTag.tag_id).where(CorpTag.dimension == "koc",
                                                             CorpTag.value == "koc"))


async def tag_ids(session: AsyncSession, member: Member) -> list[str]:
    """The stored tag ids for the member's identity type, channel and region."""
    wanted = [and_(CorpTag.dimension == dimension, CorpTag.value == value)
              for dimension, value in (("identity", member.identity_type),
                                       ("channel", member.channel), ("region", member.region))
              if value is not None]
    rows = await session.execute(select(CorpTag.tag_id).where(or_(*wanted)))
    return sorted(rows.scalars())
