"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL when
SOPBOT_TEST_PG_URL is set), settings, and a real uvicorn server running the app.

The suite runs in pytest-xdist workers (pyproject.toml's addopts; docs/development.md): each
worker is a process with a PostgreSQL database of its own (below), its own tmp_path (so its own
SQLite files) and its own ports (`free_port`); `-n 0` runs everything in this one process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from sqlalchemy import create_engine, func, select, text
from structlog._config import BoundLoggerLazyProxy

import handlers
from app import migrate
from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.bot.scheduler import LEAD_RETRY_S, Scheduler
from app.engine.config import Settings
from app.engine.db import Database, sync_url, utcnow
from app.engine.inbox.models import InboxEvent
from app.engine.logs import configure_logging
from app.engine.wecom.crypto import WeComCrypto
from app.faces.web.main import create_app
from app.faces.web.runtime import Runtime
from app.faces.web.server_options import server_options
from app.flows import Flows
from app.models import Base
from tests.fakes.wecom import FakeWeCom
from tests.pg import create_database, drop_database, scratch_schema, worker_database

REPO = Path(__file__).resolve().parent.parent
# Under pytest-xdist, this process is worker "gw0", "gw1", ... of one test run.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# A worker's PostgreSQL tests run in a database of its own on the server SOPBOT_TEST_PG_URL
# names (made in pytest_configure, dropped in pytest_unconfigure). The variable is pointed at it
# here, before any test module reads it, so the worker's tests, the processes they start and
# their scratch schemas all land there. Without xdist (`-n 0`) it is the URL as given.
SERVER_PG_URL = os.environ.get("SOPBOT_TEST_PG_URL", "")
PG_URL = (worker_database(SERVER_PG_URL, WORKER, os.environ["PYTEST_XDIST_TESTRUNUID"][:8])
          if SERVER_PG_URL and WORKER else SERVER_PG_URL)
if PG_URL:
    os.environ["SOPBOT_TEST_PG_URL"] = PG_URL
CORP_ID = "wwtestcorp0000001"
TOKEN = "testCallbackToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OPERATOR = "op_alice"


def _pg_param() -> object:
    marks = [] if PG_URL else [pytest.mark.skip(reason="SOPBOT_TEST_PG_URL not set: no PostgreSQL")]
    return pytest.param("postgresql", marks=marks, id="pg")


def pytest_configure(config: pytest.Config) -> None:
    if PG_URL != SERVER_PG_URL:
        create_database(SERVER_PG_URL, PG_URL)


def pytest_unconfigure(config: pytest.Config) -> None:
    if PG_URL != SERVER_PG_URL:
        drop_database(SERVER_PG_URL, PG_URL)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per CPU this process may run on, at most 4 (PostgreSQL's 100
    connections are shared by the workers' pools and replicas); PYTEST_XDIST_AUTO_NUM_WORKERS
    overrides it."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    return max(1, min(len(os.sched_getaffinity(0)), 4))


# Ports below Linux's ephemeral range (32768-60999), a block of 400 per worker: a port handed
# out here is no other worker's, and no outgoing connection's, while its server starts.
_PORT_BASE, _PORT_BLOCK = 20000, 400
_next_port = 0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, for a server a test starts (a port
    asked of the kernel with bind(0) and let go could be handed to another worker meanwhile)."""
    global _next_port
    index = int(WORKER[2:]) if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0
    if (index + 1) * _PORT_BLOCK > 32768 - _PORT_BASE:
        return _kernel_port()
    for _ in range(_PORT_BLOCK):
        port = _PORT_BASE + index * _PORT_BLOCK + _next_port
        _next_port = (_next_port + 1) % _PORT_BLOCK
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return _kernel_port()


def _kernel_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def pg_migrated() -> Iterator[str]:
    """A schema of its own in the PostgreSQL test database, migrated, dropped at the end."""
    with scratch_schema(PG_URL, f"sopbot_test_{os.getpid()}") as url:
        migrate.upgrade(url)
        yield url


def _truncate_all(url: str) -> None:
    """Empty the app's tables and drop tables a test made for itself (e.g. test_effect)."""
    app_tables = set(Base.metadata.tables)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'alembic_version'"))]
        for extra in set(tables) - app_tables:
            conn.execute(text(f'DROP TABLE "{extra}" CASCADE'))
        if app_tables & set(tables):
            conn.execute(text(f"TRUNCATE {', '.join(sorted(app_tables & set(tables)))} "
                              "RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session, for tests to take copies of."""
    path = tmp_path_factory.mktemp("migrated") / "sopbot.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", _pg_param()])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or the PostgreSQL test database truncated."""
    if request.param == "sqlite":
        # A copy of the session's migrated file: the same bytes as migrating anew (the
        # migrations leave no -wal beside it), without a third of a second per test.
        path = tmp_path / "sopbot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_migrated"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_migrated")
    _truncate_all(url)
    yield url


SECRET_KEY = "test-secret-key-0123456789"
API_KEY = "test-api-key-0123456789"


def make_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        database_url=db_url, corp_id=CORP_ID, callback_token=TOKEN, callback_aes_key=AES_KEY,
        agent_id=1000002, operators=frozenset({OPERATOR}), flows_path=REPO / "sop_flows",
        keywords_path=REPO / "keywords.yaml", inbox_sweep_s=0.2, inbox_retry_base_s=0.05,
        inbox_retry_max_s=0.2, log_format="json", secret_key=SECRET_KEY, api_key=API_KEY,
        # The calendar posts at wall-clock times: tests that want it drive it with their own
        # clock (tests/calendar), the others must not see its posts.
        scheduler=False,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


async def rows_of(db: Database, model: type) -> list[Any]:  # type: ignore[type-arg]
    """Every row of a table, oldest first."""
    async with db.reader() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


@dataclass
class RunningApp:
    """The app served by a real uvicorn on a free port, with WeCom-style helpers."""

    base_url: str
    runtime: Runtime
    crypto: WeComCrypto
    client: httpx.AsyncClient
    wecom: FakeWeCom

    async def post_callback(self, plaintext: str, **kwargs: object) -> httpx.Response:
        """POST a payload exactly as WeCom does: encrypted, signed, wrapped in the envelope."""
        params, body = self.crypto.encrypt_callback(plaintext, **kwargs)  # type: ignore[arg-type]
        return await self.client.post("/wecom/callback", params=params, content=body)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until the app's own worker has left no row pending."""
        async def nothing_pending() -> bool:
            async with self.runtime.db.reader() as session:
                pending = await session.scalar(select(func.count()).select_from(InboxEvent)
                                               .where(InboxEvent.status == "pending"))
            return pending == 0
        await wait_until(nothing_pending, timeout)


async def wait_until(probe, timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Poll an async probe until it answers truthy; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


@asynccontextmanager
async def serve_app(settings: Settings, *, run_worker: bool = True,
                    router: Router | None = None, wecom: FakeWeCom | None = None,
                    simulator: bool = False) -> AsyncIterator[RunningApp]:
    """Start the real app under uvicorn on 127.0.0.1 (a free port); stop it on exit.

    WeCom's API is the transport-level fake (a fresh one unless given), or with `simulator`
    the real HTTP client talking to `settings.api_base` (a `sopbot sim` on 127.0.0.1)."""
    if not run_worker:
        settings = settings.model_copy(update={"inbox_worker": False})
    wecom = wecom or FakeWeCom()
    if simulator:
        assert settings.api_base.startswith("http://127.0.0.1:"), "only a local simulator"
    app = create_app(settings, router=router, transport=None if simulator else wecom.transport)
    # uvicorn's options as `sopbot serve` sets them (X-Forwarded-For only from trusted proxies).
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on",
                                           **server_options(settings)))
    task = asyncio.create_task(server.serve())
    await wait_until(_started(server, task), 15)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            yield RunningApp(base_url, app.state.runtime, WeComCrypto(TOKEN, AES_KEY, CORP_ID),
                             client, wecom)
    finally:
        server.should_exit = True
        await task


def _started(server: uvicorn.Server, task: asyncio.Task[None]):  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        if task.done():
            task.result()  # surfaces a startup failure instead of a timeout
            raise AssertionError("server stopped during start-up")
        return server.started
    return probe


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[RunningApp]:
    async with serve_app(settings) as app:
        yield app


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    # The same processors as production (plain tracebacks, redaction), never rich locals.
    configure_logging("info", "json", secrets=[TOKEN, AES_KEY])


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A command run by a test (CliRunner, the demo in process) configures logging its own way:
    onto its own capture stream, closed when the command ends, and at its own level (the demo
    logs warnings only). The next test, whichever ran before it in its worker, must see the
    suite's logging again: the root logger's handlers and level, structlog's configuration, and
    no module logger that structlog cached on first use under the command's configuration."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    if structlog.get_config() != config:
        structlog.configure(**config)
        _forget_cached_loggers()


def _forget_cached_loggers() -> None:
    """Make every module-level structlog logger assemble itself anew on its next use."""
    for module in list(sys.modules.values()):
        for value in list(getattr(module, "__dict__", {}).values()):
            if isinstance(value, BoundLoggerLazyProxy):
                value.__dict__.pop("bind", None)  # the cached bind, set on first use


class LogRecorder:
    """Stands in for a module's structlog logger (monkeypatch it over `module.log`)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append((level, event, fields))


def config_error(path: Path, text: str, model: Any) -> Any:
    """Write `text` to `path`, load it as `model`: the ConfigFileError it must raise."""
    from app.engine.yamlconf import ConfigFileError, load_model

    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_model(path, model)
    return info.value


def scheduler_for(db: Database, flows: Flows, clock: Callable[[], datetime] = utcnow,
                  lead_retry_s: float = LEAD_RETRY_S, **settings: object) -> Scheduler:
    """The service's scheduler, with the real behaviours' jobs, on `db` with these flows (the
    calendar's `ops` robot configured)."""
    values: dict[str, object] = {"robots": "ops=robot-key", **settings}
    env = Env(make_settings(db.url, **values), flows, db, clock=clock)
    return Scheduler(env, handlers.build_router().jobs(), lead_retry_s)
