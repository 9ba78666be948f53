"""`sopbot operators passwd` and `sopbot operators list`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.engine.db import Database
from app.faces.cli.main import cli
from app.faces.console.accounts import check_password
from app.operators.models import ConsoleOperator
from tests.conftest import AES_KEY, CORP_ID, REPO, SECRET_KEY, TOKEN


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SOPBOT_DATABASE_URL", "SOPBOT_OPERATORS"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "console.env"
    path.write_text("\n".join([
        f"SOPBOT_DATABASE_URL={db_url}", f"WECOM_CORP_ID={CORP_ID}",
        f"WECOM_CALLBACK_TOKEN={TOKEN}", f"WECOM_CALLBACK_AES_KEY={AES_KEY}",
        f"SOPBOT_SECRET_KEY={SECRET_KEY}", "SOPBOT_OPERATORS=op_alice,op_bob",
        f"SOPBOT_FLOWS={REPO / 'sop_flows'}", f"SOPBOT_KEYWORDS={REPO / 'keywords.yaml'}"]) + "\n")
    return path


def passwd(env: Path, userid: str, stdin: str, *options: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["operators", "passwd", userid, *options,
                                    "--env-file", str(env)], input=stdin)


async def _accounts(db_url: str, userid: str, password: str) -> tuple[list[str], bool]:
    db = Database(db_url)
    try:
        async with db.reader() as session:
            userids = list(await session.scalars(select(ConsoleOperator.userid)
                                                 .order_by(ConsoleOperator.userid)))
            return userids, await check_password(session, userid, password)
    finally:
        await db.dispose()


def accounts(db_url: str, userid: str, password: str) -> tuple[list[str], bool]:
    """The userids with a password, and whether `password` is `userid`'s."""
    return asyncio.run(_accounts(db_url, userid, password))


def test_passwd_from_stdin_and_from_the_prompt(env: Path, db_url: str) -> None:
    result = passwd(env, "op_alice", "first-password\n", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert result.stdout == "console password set for op_alice\n"
    assert accounts(db_url, "op_alice", "first-password") == (["op_alice"], True)

    prompted = passwd(env, "op_alice", "second-password\nsecond-password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "second-password" not in prompted.stdout  # typed hidden
    assert accounts(db_url, "op_alice", "second-password") == (["op_alice"], True)
    assert accounts(db_url, "op_alice", "first-password")[1] is False


def test_passwd_refuses_a_stranger_a_short_password_and_a_typo(env: Path, db_url: str) -> None:
    stranger = passwd(env, "op_mallory", "long-enough-password\n", "--password-stdin")
    assert stranger.exit_code == 2
    assert stranger.stderr == ("sopbot: 'op_mallory' is not in SOPBOT_OPERATORS; "
                               "add it there first\n")
    short = passwd(env, "op_alice", "short\n", "--password-stdin")
    assert short.exit_code == 2
    assert short.stderr == "sopbot: the password must have at least 8 characters\n"
    typo = passwd(env, "op_alice", "one-password\nother-password\n")
    assert typo.exit_code != 0
    assert accounts(db_url, "op_alice", "one-password") == ([], False)


def test_list_says_who_can_log_in(env: Path, db_url: str) -> None:
    assert passwd(env, "op_bob", "bobs-password\n", "--password-stdin").exit_code == 0
    result = CliRunner().invoke(cli, ["operators", "list", "--env-file", str(env)])
    assert result.exit_code == 0, result.output
    alice, bob = result.stdout.splitlines()
    assert alice == "op_alice  no password: run `sopbot operators passwd op_alice`"
    assert bob.startswith("op_bob  password set 20") and bob.endswith("(Asia/Shanghai)")
