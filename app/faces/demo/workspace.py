"""The demo's corner of the working directory (demo/): a fresh SQLite file each run, a copy of
the flows with group sizes scaled to the population, photos, the log, and an env file so the
usual commands (`sopbot funnel`, `sopbot groups list`, ...) can read the demo's database."""

from __future__ import annotations

import re
import secrets
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from app.engine.config import DEFAULT_API_BASE, Settings
from app.engine.private_file import write_private
from app.faces.sim.config import SimSettings
from app.faces.sim.embedded import MOUNT_PATH, embedded_simulator
from app.faces.sim.platform import WEBHOOK_PATH

CORP_ID = "wwsopbotdemo0000001"
AGENT_ID = 1000002
OPERATOR = "demo_operator"  # the console login the demo makes
IDEAL_SIZE = re.compile(r"(?m)^(\s*ideal_size:\s*)\d+")
MEMBERS_PER_IDEAL = 20  # a few groups of every segment fill, so onboarding has work


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "sopbot-demo.db"

    @property
    def log(self) -> Path:
        return self.root / "sopbot-demo.log"

    @property
    def flows(self) -> Path:
        return self.root / "sop_flows"

    @property
    def photos(self) -> Path:
        return self.root / "photos"

    @property
    def env(self) -> Path:
        return self.root / "demo.env"


def ideal_size_for(members: int) -> int:
    """The demo's group size: sop_flows' 120-180 would leave every group of a few hundred
    members half empty, and only groups that fill start their onboarding campaign."""
    return max(3, round(members / MEMBERS_PER_IDEAL))


def prepare(root: Path, flows_source: Path, ideal_size: int) -> Workspace:
    """Empty the demo's files of an earlier run; copy the flows with the demo's group size."""
    ws = Workspace(root.resolve())
    ws.root.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        ws.db.with_name(ws.db.name + suffix).unlink(missing_ok=True)
    for directory in (ws.photos, ws.flows):
        shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(flows_source, ws.flows)
    _programme(ws.flows)
    routing = ws.flows / "routing.yaml"
    routing.write_text(IDEAL_SIZE.sub(rf"\g<1>{ideal_size}", routing.read_text("utf-8")),
                       encoding="utf-8")
    return ws


# The recommender programme's two calendar columns (sop_flows/calendar.yaml shows them
# commented): the 光荣榜 on Mondays and a KOC-led topic on Thursdays, in every segment.
PROGRAMME_SLOTS = ('      - {time: "19:30", column: honor_roll, priority: 6, weekdays: [1]}\n'
                   '      - {time: "20:30", column: topic, priority: 6, weekdays: [4]}\n')
BURST = re.compile(r"burst: \{max: \d+,")


def _programme(flows: Path) -> None:
    """The demo's calendar gets the programme's slots; its burst rule holds a recommender's
    fourth friend within the window (koc_story.py plays one such burst)."""
    calendar, koc = flows / "calendar.yaml", flows / "koc.yaml"
    if not koc.exists():
        return
    calendar.write_text(re.sub(r"(?m)^    slots:\n", lambda m: m.group(0) + PROGRAMME_SLOTS,
                               calendar.read_text("utf-8")), encoding="utf-8")
    koc.write_text(BURST.sub("burst: {max: 3,", koc.read_text("utf-8")), encoding="utf-8")


def demo_settings(ws: Workspace, port: int, keywords: Path,
                  robots: set[str]) -> tuple[Settings, SimSettings]:
    """The service's settings (fresh secrets, this run's database) pointed at the simulator
    built into it, and the simulator's. Every WeCom secret is set to none explicitly: one in
    the environment must not send the demo's synthetic members to a real corp; so are the
    other settings the demo relies on (rates, workers). Each group robot the calendar names
    gets a fresh webhook key, which the simulator then accepts; the chat archive's secret is
    fresh too, and the simulator's archive is what the service reads."""
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{ws.db}", corp_id=CORP_ID,
        callback_token=SecretStr(secrets.token_urlsafe(12)), callback_aes_key=_aes_key(),
        agent_id=AGENT_ID, agent_secret=None, contact_secret_raw=None, kf_secret_raw=None,
        api_base=DEFAULT_API_BASE, flows_path=ws.flows, keywords_path=keywords.resolve(),
        operators=frozenset({OPERATOR}), secret_key=SecretStr(secrets.token_urlsafe(24)),
        api_key=SecretStr(secrets.token_urlsafe(24)), public_url=f"http://127.0.0.1:{port}",
        photo_dir=ws.photos, host="127.0.0.1", port=port, log_level="warning",
        log_format="json", robots=_robot_keys(robots), rate_limits="", inbox_worker=True,
        outbox_sender=True,
        # The chat archive is read: the simulator keeps the groups' talk (group_talk.py).
        archive_secret=SecretStr(secrets.token_urlsafe(24)),
        # The demo drives the calendar with its own clock (calendar_days.py); the wall-clock
        # scheduler would post today's slots in between.
        scheduler=False,
        # Rewards are issued through the platform's webhook: the simulator's stand-in.
        koc_webhook_url=f"http://127.0.0.1:{port}{MOUNT_PATH}{WEBHOOK_PATH}",
        koc_webhook_secret=SecretStr(secrets.token_urlsafe(24)))
    simulated = embedded_simulator(settings)
    assert simulated is not None, "no secret and the default API base: always simulated"
    return simulated


def _robot_keys(names: set[str]) -> SecretStr | None:
    keys = ",".join(f"{name}={secrets.token_urlsafe(16)}" for name in sorted(names))
    return SecretStr(keys) if keys else None


def _aes_key() -> SecretStr:
    return SecretStr("".join(secrets.choice(string.ascii_letters + string.digits)
                             for _ in range(43)))


def _value(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret else ""


def write_env(ws: Workspace, settings: Settings) -> None:
    """What `sopbot funnel --env-file demo/demo.env` and friends need to read the demo's data
    (this run's generated secrets: they protect nothing but the demo)."""
    values = {
        "SOPBOT_DATABASE_URL": settings.database_url, "WECOM_CORP_ID": settings.corp_id,
        "WECOM_CALLBACK_TOKEN": settings.callback_token.get_secret_value(),
        "WECOM_CALLBACK_AES_KEY": settings.callback_aes_key.get_secret_value(),
        "WECOM_AGENT_ID": str(settings.agent_id),
        "SOPBOT_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SOPBOT_API_KEY": settings.api_key.get_secret_value() if settings.api_key else "",
        "SOPBOT_FLOWS": str(settings.flows_path), "SOPBOT_KEYWORDS": str(settings.keywords_path),
        "SOPBOT_OPERATORS": ",".join(sorted(settings.operators)),
        "SOPBOT_PHOTO_DIR": str(settings.photo_dir), "SOPBOT_SCHEDULER": "false",
        "SOPBOT_ROBOTS": settings.robots.get_secret_value() if settings.robots else "",
        "SOPBOT_SIM_KEY": settings.sim_key.get_secret_value() if settings.sim_key else "",
        # The archive's rollups are read with it set (the console's activity source).
        "WECOM_ARCHIVE_SECRET": _value(settings.archive_secret),
        "SOPBOT_ARCHIVE_SOURCE": settings.archive_source,
        "SOPBOT_KOC_WEBHOOK_URL": settings.koc_webhook_url or "",
        "SOPBOT_KOC_WEBHOOK_SECRET": _value(settings.koc_webhook_secret)}
    # Owner-only: it holds this run's secrets.
    write_private(ws.env, "".join(f"{k}={v}\n" for k, v in values.items()))
