"""Settings: DESIGN.md §4 names, one clear line per problem, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.config import ConfigError, Settings, load_settings

GOOD = {
    "WECOM_CORP_ID": "wwcorp",
    "WECOM_CALLBACK_TOKEN": "tok",
    "WECOM_CALLBACK_AES_KEY": "a" * 43,
    "SOPBOT_SECRET_KEY": "config-test-secret-key",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith(("WECOM_", "SOPBOT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in {**GOOD, **values}.items():
        monkeypatch.setenv(name, value)


def test_defaults_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SOPBOT_OPERATORS=" alice, bob ,,", WECOM_AGENT_SECRET="s3cret",
            WECOM_KF_SECRET="kf")
    settings = load_settings(Settings)
    assert settings.database_url == "sqlite:///sopbot.db"
    assert settings.api_base == "https://qyapi.weixin.qq.com"
    assert settings.operators == {"alice", "bob"}
    assert settings.keywords_path == Path("keywords.yaml")
    assert settings.flows_path == Path("sop_flows")
    assert settings.contact_secret.get_secret_value() == "s3cret"  # defaults to the app secret
    assert settings.kf_secret.get_secret_value() == "kf"


@pytest.mark.parametrize(("env", "expected"), [
    ({"WECOM_CALLBACK_AES_KEY": "a" * 42},
     "WECOM_CALLBACK_AES_KEY: must be exactly 43 characters of A-Z, a-z, 0-9 (got 42)"),
    ({"WECOM_CALLBACK_AES_KEY": "a" * 42 + "!"}, "WECOM_CALLBACK_AES_KEY: must be exactly 43"),
    ({"WECOM_AGENT_ID": "app"}, "WECOM_AGENT_ID: Input should be a valid integer"),
    ({"WECOM_API_BASE": "qyapi.weixin.qq.com"}, "WECOM_API_BASE: must start with http"),
    ({"SOPBOT_DATABASE_URL": "mysql://x"}, "SOPBOT_DATABASE_URL: must be a sqlite"),
    ({"SOPBOT_DATABASE_URL": "sqlitefoo"}, "SOPBOT_DATABASE_URL: must be a sqlite"),
    ({"SOPBOT_PORT": "99999"}, "SOPBOT_PORT: Input should be less than or equal to 65535"),
])
def test_malformed_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                            expected: str) -> None:
    set_env(monkeypatch, **env)
    with pytest.raises(ConfigError) as info:
        load_settings(Settings)
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message
    for value in env.values():
        assert value not in message  # the offending value may be a secret


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_missing_required_variable(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    set_env(monkeypatch)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigError, match=f"^{missing} is not set$"):
        load_settings(Settings)


def test_env_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items()) + "SOPBOT_PORT=9000\n")
    monkeypatch.setenv("SOPBOT_PORT", "9100")
    assert load_settings(Settings, env_file).port == 9100


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(Settings, tmp_path / "nope.env")


def test_database_password_counts_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SOPBOT_DATABASE_URL="postgresql+psycopg://bot:pa55word@db/sopbot")
    assert "pa55word" in load_settings(Settings).secret_values()


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, WECOM_AGENT_SECRET="topsecretvalue")
    settings = load_settings(Settings)
    assert "topsecretvalue" not in repr(settings)
    assert "a" * 43 not in repr(settings)
    assert "topsecretvalue" in settings.secret_values()


def test_example_env_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    settings = load_settings(Settings, example)
    assert settings.database_url.startswith("sqlite")


def test_archive_keys_by_version_from_files_or_pem(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from Crypto.PublicKey import RSA

    pem = RSA.generate(2048).export_key().decode()
    (tmp_path / "v1.pem").write_text(pem)
    inline = pem.replace("\n", "\\n")
    set_env(monkeypatch, WECOM_ARCHIVE_SECRET="archive-secret",
            SOPBOT_ARCHIVE_KEYS=f"1={tmp_path / 'v1.pem'},2={inline}")
    settings = load_settings(Settings)
    assert sorted(settings.archive_private_keys) == [1, 2]
    assert settings.archive_private_keys[2] == pem
    assert pem in settings.secret_values()  # the log redactor blanks the keys too


@pytest.mark.parametrize(("keys", "expected"), [
    (None, "SOPBOT_ARCHIVE_KEYS: required with WECOM_ARCHIVE_SECRET"),
    ("1=/nowhere/key.pem", "SOPBOT_ARCHIVE_KEYS: key of version 1: cannot read"),
    ("one=/x.pem", "SOPBOT_ARCHIVE_KEYS: must be VERSION=PEM-FILE-OR-TEXT"),
    ("3=-----BEGIN RSA PRIVATE KEY-----\\nbroken",
     "SOPBOT_ARCHIVE_KEYS: key of version 3 is not an RSA key"),
])
def test_archive_settings_that_cannot_work_stop_the_start(monkeypatch: pytest.MonkeyPatch,
                                                          keys: str | None, expected: str) -> None:
    set_env(monkeypatch, WECOM_ARCHIVE_SECRET="archive-secret", WECOM_AGENT_SECRET="app",
            **({"SOPBOT_ARCHIVE_KEYS": keys} if keys else {}))
    with pytest.raises(ConfigError) as info:
        load_settings(Settings)
    assert expected in str(info.value) and "broken" not in str(info.value)


def test_the_built_in_simulator_needs_no_archive_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, WECOM_ARCHIVE_SECRET="archive-secret")  # no WeCom secret: simulated
    settings = load_settings(Settings)
    assert settings.builtin_simulator and settings.archive_private_keys == {}


@pytest.mark.parametrize(("env", "expected"), [
    ({"SOPBOT_KOC_WEBHOOK_URL": "https://platform.example/koc"},
     "SOPBOT_KOC_WEBHOOK_URL and SOPBOT_KOC_WEBHOOK_SECRET go together"),
    ({"SOPBOT_KOC_WEBHOOK_SECRET": "a-long-enough-secret"},
     "SOPBOT_KOC_WEBHOOK_URL and SOPBOT_KOC_WEBHOOK_SECRET go together"),
    ({"SOPBOT_KOC_WEBHOOK_URL": "platform.example/koc",
      "SOPBOT_KOC_WEBHOOK_SECRET": "a-long-enough-secret"}, "SOPBOT_KOC_WEBHOOK_URL: String"),
    ({"SOPBOT_KOC_WEBHOOK_URL": "https://platform.example/koc",
      "SOPBOT_KOC_WEBHOOK_SECRET": "short"}, "SOPBOT_KOC_WEBHOOK_SECRET: Value should have"),
])
def test_the_reward_webhook_is_signed_or_off(monkeypatch: pytest.MonkeyPatch,
                                            env: dict[str, str], expected: str) -> None:
    set_env(monkeypatch, **env)
    with pytest.raises(ConfigError) as info:
        load_settings(Settings)
    assert expected in str(info.value)
    assert "a-long-enough-secret" not in str(info.value) and "short" not in str(info.value)


def test_the_reward_webhook_secret_is_blanked_in_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SOPBOT_KOC_WEBHOOK_URL="https://platform.example/koc",
            SOPBOT_KOC_WEBHOOK_SECRET="webhook-secret-0123456789")
    assert "webhook-secret-0123456789" in load_settings(Settings).secret_values()
