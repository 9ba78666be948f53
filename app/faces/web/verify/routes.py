"""The review API (/api/reviews/...) with the platform user directory (/api/platform-users) it
matches against; the member-facing form (/verify/...) is form.router, bounded on its own."""

from __future__ import annotations

from fastapi import APIRouter

from app.faces.web import directory as directory_routes
from app.faces.web.verify import reviews

router = APIRouter()
router.include_router(reviews.router)
router.include_router(directory_routes.router)
