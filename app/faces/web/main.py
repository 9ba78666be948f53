"""create_app(): the FastAPI app and its lifespan (database, flows, router, inbox worker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse

import handlers
from app import migrate
from app.archive.reader import ArchiveReader
from app.calendar.planner import cap_report
from app.engine import wakeups
from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.bot.scheduler import Scheduler
from app.engine.config import Settings, parse_rates
from app.engine.db import Database, is_sqlite, safe_url
from app.engine.inbox.worker import InboxWorker
from app.engine.inbox.writer import InboxWriter
from app.engine.liveness import Liveness
from app.engine.logs import get_logger
from app.engine.outbox.ratelimit import RateLimits
from app.engine.outbox.sender import OutboxSender
from app.engine.wakeups import Wakeups
from app.engine.wecom.crypto import WeComCrypto
from app.engine.wecom.wiring import build_archive_source, build_wecom
from app.faces.console import routes as console
from app.faces.sim import create_sim_app
from app.faces.sim.config import SimSettings
from app.faces.sim.embedded import MOUNT_PATH
from app.faces.web import callback, health, koc_member
from app.faces.web import content as content_routes
from app.faces.web import funnel as funnel_routes
from app.faces.web import groups as groups_routes
from app.faces.web import koc as koc_routes
from app.faces.web.http_errors import validation_error
from app.faces.web.metrics import Metrics
from app.faces.web.metrics import router as metrics_routes
from app.faces.web.runtime import Runtime
from app.faces.web.verify import form as verify_form
from app.faces.web.verify import routes as verify_routes
from app.flows import load_flows
from app.kf.reader import KfReader

log = get_logger("sopbot.app")


class SchemaNotCurrent(Exception):
    """The PostgreSQL schema does not match the code (behind: run `sopbot migrate`)."""


async def prepare_schema(settings: Settings) -> None:
    """SQLite belongs to this process, so migrate it; PostgreSQL is migrated by `sopbot migrate`."""
    url = settings.database_url
    if is_sqlite(url):
        await asyncio.to_thread(migrate.upgrade, url)
        return
    problem = await asyncio.to_thread(migrate.schema_problem, url)
    if problem:
        raise SchemaNotCurrent(f"database {safe_url(url)}: {problem}")


def build_runtime(settings: Settings, router: Router | None = None,
                   transport: httpx.AsyncBaseTransport | None = None) -> Runtime:
    """The process's long-lived objects, wired from the router: what runs on a behaviour's
    behalf (intake, settle hooks, kf page steps, jobs) is asked of it, never listed here."""
    if router is None:
        router = handlers.build_router()
    else:
        handlers.check_router(router)  # a test's own router: complete, or says it is partial
    db = Database(settings.database_url)
    flows = load_flows(settings.flows_path)
    crypto = WeComCrypto(settings.callback_token.get_secret_value(),
                         settings.callback_aes_key.get_secret_value(), settings.corp_id)
    http, wecom, tokens = build_wecom(settings, db, transport)
    env = Env(settings, flows, db, wecom)
    liveness = Liveness(db)  # one owner id and lock for the worker's and sender's claims
    worker = InboxWorker(db, router, settings, flows, liveness=liveness)
    sender = OutboxSender(db, wecom, settings, RateLimits(parse_rates(settings.rate_limits)),
                          liveness=liveness)
    hooks, after = router.settled_hooks(env)
    for kind, hook in hooks:
        sender.on_settled(kind, hook)
    for after_hook in after:
        sender.after_settled(after_hook)
    worker.yield_to = sender.fast_lane_idle  # welcomes before the rest of the inbox
    intake = router.intake(env)
    writer = InboxWriter(db, intake)
    kf_reader = KfReader(db, wecom, settings, on_stored=worker.wake, intake=intake,
                         page_steps=router.kf_page_steps(env))
    wake = Wakeups()
    wake.on(wakeups.OUTBOX_PENDING, sender.on_pending)
    wake.on(wakeups.KF_NEWS, kf_reader.wake)
    archive = _archive_reader(env, router)
    if archive is not None:
        wake.on(wakeups.ARCHIVE_NEWS, archive.wake)
    db.commit_hooks.append(wake)
    scheduler = Scheduler(env, router.jobs(), lead_retry_s=settings.leader_retry_s)
    metrics = Metrics()
    sender.on_outcome.append(metrics.settled)
    return Runtime(settings, db, crypto, flows, router, worker, writer, http, wecom,
                    tokens, sender, kf_reader, scheduler, metrics, liveness, archive)


def _archive_reader(env: Env[Any], router: Router) -> ArchiveReader | None:
    """The chat archive reader when WECOM_ARCHIVE_SECRET is set (docs/archive.md)."""
    if env.settings.archive_secret is None or env.wecom is None:
        return None
    return ArchiveReader(env.db, build_archive_source(env.settings, env.wecom), env.settings,
                         router.archive_page_steps(env))


def create_app(settings: Settings, *, router: Router | None = None,
               transport: httpx.AsyncBaseTransport | None = None,
               simulator: SimSettings | None = None) -> FastAPI:
    """The app; `router` replaces the handlers and `transport` the network (tests);
    `simulator` mounts the built-in WeCom simulator (app/faces/sim/embedded.py)."""
    # Built in: its WeCom API answers the service it is mounted in only (app/faces/sim/access.py).
    sim_app = create_sim_app(simulator, loopback_api=True) if simulator is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await prepare_schema(settings)
        runtime = build_runtime(settings, router, transport)
        app.state.runtime = runtime
        await console.on_start(runtime)
        if settings.inbox_worker:
            runtime.worker.start()
        if settings.outbox_sender:
            if runtime.db.is_sqlite:
                await runtime.sender.release_dead_leases()
            runtime.sender.start()
        if settings.kf_reader:
            runtime.kf_reader.start()
        if settings.archive_reader and runtime.archive_reader is not None:
            runtime.archive_reader.start()
        if settings.scheduler:
            runtime.scheduler.start()
            for line in cap_report(runtime.flows.calendar, runtime.flows.talks):
                log.warning("calendar_daily_cap", detail=line)
        log.info("sopbot_started", database=safe_url(settings.database_url))
        try:
            yield
        finally:
            await _shutdown(runtime)
            if sim_app is not None:
                await sim_app.state.sim.aclose()

    # Every body is bounded: SOPBOT_MAX_REQUEST_BYTES unless a router says otherwise (413).
    app = FastAPI(title="sopbot", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, max_body_size=settings.max_request_bytes)
    app.include_router(callback.router)
    app.include_router(health.router)
    app.include_router(metrics_routes)
    app.include_router(funnel_routes.router)
    app.include_router(content_routes.router)
    app.include_router(groups_routes.router)
    app.include_router(koc_routes.router)
    app.include_router(koc_member.router)
    app.include_router(verify_routes.router)
    app.include_router(verify_form.router, max_body_size=verify_form.max_body_size(settings))
    console.install(app)
    if sim_app is not None:
        app.mount(MOUNT_PATH, sim_app)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


async def _shutdown(runtime: Runtime) -> None:
    await runtime.scheduler.stop()
    await runtime.kf_reader.stop()
    if runtime.archive_reader is not None:
        await runtime.archive_reader.stop()
    await runtime.worker.stop()
    await runtime.sender.stop()
    await runtime.liveness.close()  # after both released their leases
    await runtime.http.aclose()
    await runtime.db.dispose()
    log.info("sopbot_stopped")


async def _internal_error(request: Request, exc: Exception) -> PlainTextResponse:
    # Never a stack trace in a response; the log has it, tied to the callback id.
    log.exception("request_failed", path=request.url.path, exc_info=exc)
    return PlainTextResponse("internal error", status_code=500)
