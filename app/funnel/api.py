"""POST /api/funnel/events: the app reports the steps that happen before the friend add."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.apikey import require_api_key

router = APIRouter(prefix="/api/funnel", dependencies=[Depends(require_api_key)])
