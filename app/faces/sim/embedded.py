"""The built-in simulator: `sopbot serve` without WeCom credentials talks to a simulator mounted
in its own app instead of to WeCom, so a fresh machine runs the whole path with nothing else.

Only when no WeCom secret is set (agent, contact, kf) and WECOM_API_BASE is left at WeCom's
address: any real credential or an explicit API base turns it off. And only on SQLite: a
PostgreSQL database means a deployment, where a forgotten secret must stop the service rather
than quietly send everything to a simulator.

Its control paths need its key (app/faces/sim/access.py): SOPBOT_SIM_KEY, or one made at start and
written owner-only next to the database (`key_file`), for the local operator to read. Its WeCom
API paths answer only loopback clients that no proxy forwarded (app/faces/web/main.py mounts
it so): the service it is mounted in is their only caller, with secrets made at start. The chat
archive's secret is the service's when it has one (WECOM_ARCHIVE_SECRET: the service then reads
the simulator's archive), else one made at start that nobody uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from app.engine.config import Settings
from app.engine.db import is_sqlite
from app.engine.private_file import write_private
from app.faces.sim.access import is_loopback, new_key
from app.faces.sim.config import SimSettings

MOUNT_PATH = "/wecom-sim"


class CredentialsRequired(ValueError):
    """No WeCom secret on a database that is not the embedded SQLite one."""


def embedded_simulator(settings: Settings) -> tuple[Settings, SimSettings] | None:
    """(the service's settings pointed at the simulator, the simulator's), or None."""
    if not settings.builtin_simulator:
        return None
    if not is_sqlite(settings.database_url):
        raise CredentialsRequired(
            "WECOM_AGENT_SECRET: required with a PostgreSQL database (the built-in WeCom "
            "simulator runs only on SQLite; for a separate `sopbot sim` set WECOM_API_BASE)")
    local = f"http://127.0.0.1:{settings.port}"
    values: dict[str, Any] = {
        "corp_id": settings.corp_id, "callback_token": settings.callback_token,
        "callback_aes_key": settings.callback_aes_key, "bot_url": f"{local}/wecom/callback"}
    if settings.agent_id is not None:
        values["agent_id"] = settings.agent_id
    # Secrets of its own, never the simulator's published defaults: they open its WeCom API.
    values["agent_secret"] = SecretStr(new_key())
    # The chat archive is read when the service has a secret for it (WECOM_ARCHIVE_SECRET):
    # then the simulator takes that one and the service reads the simulator's pages.
    values["archive_secret"] = settings.archive_secret or SecretStr(new_key())
    values["robots"] = tuple(settings.robot_keys.values()) or (new_key(),)
    values["members"] = _members(settings)
    values["control_key"] = settings.sim_key or SecretStr(new_key())
    # The platform's stand-in checks the reward webhook's signature with the service's secret.
    values["koc_webhook_secret"] = settings.koc_webhook_secret
    sim = SimSettings(_env_file=None, **values)
    pointed = settings.model_copy(update={"api_base": local + MOUNT_PATH,
                                          "agent_secret": sim.agent_secret,
                                          "sim_key": sim.control_key,
                                          "archive_source": "simulator"})
    return pointed, sim


def _members(settings: Settings) -> tuple[str, ...]:
    """The simulator's defaults, the operators and every staff member sop_flows names, so
    that `sopbot codes sync` and the operator commands work against it out of the box."""
    from app.flows import load_flows  # serve validated the flows before getting here

    staff = {s for c in load_flows(settings.flows_path).funnel.channels.values() for s in c.staff}
    defaults = SimSettings.model_fields["members"].default
    return tuple(dict.fromkeys([*defaults, *sorted(settings.operators), *sorted(staff)]))


class ExposedSimulator(ValueError):
    """The built-in simulator would listen on an address other machines reach."""


def check_host(settings: Settings) -> None:
    """Refuse a non-loopback SOPBOT_HOST unless SOPBOT_SIM_ALLOW_REMOTE says it is meant: the
    simulator holds what the service sent WeCom (the members' links among it)."""
    if is_loopback(settings.host) or settings.sim_allow_remote:
        return
    raise ExposedSimulator(
        f"SOPBOT_HOST={settings.host[:64]} is not a loopback address, and no WeCom secret "
        "is set, so the built-in WeCom simulator would be reachable from other machines; set "
        "WECOM_AGENT_SECRET for a real corp, SOPBOT_HOST=127.0.0.1, or "
        "SOPBOT_SIM_ALLOW_REMOTE=true to expose the simulator on purpose")


def key_file(settings: Settings) -> Path:
    """Where the simulator's control key is written: beside the SQLite database."""
    database = make_url(settings.database_url).database or "sopbot.db"
    return Path(f"{database}.sim-key")


def write_key(settings: Settings, key: str) -> Path:
    """Write `key` to `key_file`, readable by this user only."""
    path = key_file(settings)
    write_private(path, key + "\n")
    return path
