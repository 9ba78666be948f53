"""GET /api/koc: the referral programme (推荐官) for the platform's server. Same API key as the
rest of /api (`Authorization: Bearer $SOPBOT_API_KEY`; 401 without it, 503 while no key is
configured).

    GET /api/koc?limit=100[&cursor=…]
    {"recommenders": [{"external_userid": "wm…", "member_id": 12, "referred": 5,
                       "credited": 3,
                       "rewards": [{"tier": "bronze", "kind": "tier", "period": null,
                                    "status": "approved"}]}],
     "candidates": [{"external_userid": "wm…", "score": 9,
                     "reasons": {"referrals": 3}}],
     "next_cursor": "12"}

Recommenders come in id order (the order they became one), at most `limit` (1-500, default
100) a page; pass `next_cursor` back as `cursor` for the next page, until it is null.
`referred` counts the friends who came through their code first (not those another recommender
brought first); `credited` the referrals that count (verified businesses in a group, not
revoked). `rewards` is their ledger, oldest first: `tier` is the reward's name in koc.yaml (a
tier's, or `top1`… for a month's rank, whose month is `period`), `status` one of earned,
approved, issued, declined.

`candidates` (KOC candidates by score, highest first, with the points' sources: referrals,
answers, contributions) are computed over the whole programme, so they come on the first page
only (no cursor) and are an empty list on the others. Without sop_flows/koc.yaml there is no
programme: candidates are empty; recommenders made before are still listed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from app.engine.db import utcnow
from app.faces.web.apikey import require_api_key
from app.koc import kocs, report

router = APIRouter(prefix="/api/koc", dependencies=[Depends(require_api_key)])
ROW_ID_MAX = 2**63 - 1


class RewardOut(BaseModel):
    tier: str
    kind: Literal["tier", "rank"]
    period: str | None
    status: Literal["earned", "approved", "issued", "declined"]


class RecommenderOut(BaseModel):
    external_userid: str
    member_id: int
    referred: int
    credited: int
    rewards: list[RewardOut]

    @classmethod
    def of(cls, row: report.RecommenderRow) -> RecommenderOut:
        return cls.model_validate({
            "external_userid": row.person.external_userid, "member_id": row.person.member_id,
            "referred": row.counts.referred, "credited": row.counts.credited,
            "rewards": [{"tier": w.name, "kind": w.kind, "period": w.period,
                         "status": w.status} for w in row.rewards]})


class CandidateOut(BaseModel):
    external_userid: str
    score: int
    reasons: dict[str, int]


class KocPage(BaseModel):
    recommenders: list[RecommenderOut]
    candidates: list[CandidateOut]
    next_cursor: str | None


@router.get("")
async def koc_overview(
        request: Request,
        cursor: Annotated[str | None, Query(min_length=1, max_length=19,
                                            pattern=r"^[0-9]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=report.PAGE_MAX)] = 100) -> KocPage:
    """One page of recommenders in id order, and the candidates on the first page."""
    runtime = request.app.state.runtime
    after = int(cursor) if cursor is not None else None
    if after is not None and after > ROW_ID_MAX:
        raise HTTPException(422, "cursor: not a cursor this API gave")
    async with runtime.db.reader() as session:
        rows, next_id = await report.api_page(session, after, limit)
        found = (await kocs.candidates(session, runtime.flows.koc, utcnow())
                 if after is None and runtime.flows.koc is not None else [])
    return KocPage(recommenders=[RecommenderOut.of(r) for r in rows],
                   candidates=[CandidateOut(external_userid=c.external_userid, score=c.score,
                                            reasons=c.reasons) for c in found],
                   next_cursor=str(next_id) if next_id is not None else None)
