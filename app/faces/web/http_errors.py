"""Answers to requests the app refuses, the same for every route."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_ERRORS = 20  # a list of 5,000 bad items needs only the first few to be fixed


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming where each problem is and what it is, never the value sent: FastAPI's own
    answer echoes the input (a 30 MB body came back whole)."""
    errors: list[dict[str, Any]] = []
    if isinstance(exc, RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()[:MAX_ERRORS]]
    return JSONResponse({"detail": errors}, status_code=422)
