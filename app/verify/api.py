"""The member-facing verification form (/verify/...) and the review API (/api/reviews/...)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
