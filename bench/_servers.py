"""The two servers of bench/callback_throughput.py, started by the same launcher so that the only
difference between them is the app.

    python -m bench._servers sopbot --port 8123   # create_app(Settings from SOPBOT_*/WECOM_*)
    python -m bench._servers bare --port 8124     # FastAPI with one POST /bare

Run from the repository root (the benchmark does, pinned to one core with taskset).
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI, Request, Response

from app.faces.web.server_options import tune_gc

# Pinned rather than "auto" so both servers are known to run the same implementations, and so a
# missing uvloop/httptools fails loudly instead of quietly measuring the pure-Python fallbacks.
UVICORN_OPTIONS = {
    "loop": "uvloop",
    "http": "httptools",
    "workers": 1,
    "access_log": False,
    "log_level": "warning",
    "server_header": False,
    # The apps configure their own logging; uvicorn's dictConfig would only add handlers.
    "log_config": None,
}


def bare_app() -> FastAPI:
    """The yardstick: routing, body read and an empty 200, nothing else."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/bare")
    async def bare(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    return app


def sopbot_app() -> FastAPI:
    """The real app as `sopbot serve` builds it, configured from the environment only."""
    from app.engine.config import Settings
    from app.engine.logs import configure_logging
    from app.faces.web.main import create_app

    # _env_file=None: a developer's .env in the working directory must not change the benchmark.
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    return create_app(settings)


def bare_logging() -> None:
    # Same logging set-up as sopbot (structlog JSON on stderr at the same level), so neither
    # side pays for logging the other does not; the bare app logs nothing at warning anyway.
    from app.engine.logs import configure_logging

    configure_logging(os.environ.get("SOPBOT_LOG_LEVEL", "warning"), "json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=["sopbot", "bare"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.app == "sopbot":
        app = sopbot_app()
    else:
        bare_logging()
        app = bare_app()
    # As `sopbot serve` does, and for both servers alike: the ratio must come from the apps.
    tune_gc()
    uvicorn.run(app, host="127.0.0.1", port=args.port, **UVICORN_OPTIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
