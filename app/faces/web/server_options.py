"""Process-level tuning of a long-running server, applied by `sopbot serve` (not by tests, which
build many apps in one process and want their garbage collected)."""

from __future__ import annotations

import gc
from typing import Any

from app.engine.config import Settings

# Python's default first threshold (700 allocations) runs a collection every few requests;
# each request allocates thousands of short-lived objects that reference counting frees anyway.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Freeze what start-up built and make collections rarer.

    Modules, models and the app live as long as the process: frozen, they are no longer walked
    by every full collection (bench/callback_throughput.py: a markedly lower p99 under load)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the service, wherever it is started (`sopbot serve`, the demo).

    X-Forwarded-* is believed only from SOPBOT_TRUSTED_PROXIES: uvicorn's own default believes
    127.0.0.1 (or FORWARDED_ALLOW_IPS), which lets a client on the machine, or behind a local
    proxy that passes the header through, pick the address the login throttle counts by."""
    proxies = ",".join(settings.trusted_proxies)
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or "",
            "server_header": False, "log_config": None, "access_log": False}
