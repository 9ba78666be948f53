"""The member-facing verification form (/verify/...) and the review API (/api/reviews/...),
with the platform user directory (/api/platform-users) they match against."""

from __future__ import annotations

from fastapi import APIRouter

from app.directory import api as directory_api
from app.verify import form, reviews

router = APIRouter()
router.include_router(form.router)
router.include_router(reviews.router)
router.include_router(directory_api.router)
