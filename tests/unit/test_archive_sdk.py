"""The chat archive SDK (WeCom's own .so from the pyweworkfinance wheel), for real where it can
be here: it loads, Init works, a network failure is a retryable error, the RSA step decrypts a
key encrypted with a test key pair, and a malformed record kills only the child process.
GetChatData goes through a proxy on a closed local port: nothing leaves the machine."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from Crypto.Cipher import PKCS1_v1_5
from Crypto.PublicKey import RSA

from app.engine.wecom.archive_child import ArchiveChild, ChildDied
from app.engine.wecom.archive_sdk import (
    ArchiveError,
    ArchiveRetryable,
    checked,
    decrypt_random_key,
    library_path,
)

CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, the SDK fails at once


async def test_the_library_ships_in_the_wheel_and_inits_offline() -> None:
    """Loaded in the child only: in a process that has loaded other native libraries (this
    test process) the SDK has been seen to abort, which is the child's whole point."""
    assert library_path().is_file()
    child = ArchiveChild("wwcorp", "archive-secret")
    try:
        with pytest.raises(ArchiveRetryable) as caught:  # Init answered 0 before this
            await child.page(0, 100, proxy=CLOSED_PROXY, timeout_s=2)
        assert caught.value.errcode == 10001 and child.starts == 1
    finally:
        await child.close()


def test_errcodes_map_to_retryable_or_operator_errors() -> None:
    checked(0, "Init")
    for code in (10001, 10002, 10003):
        with pytest.raises(ArchiveRetryable):
            checked(code, "GetChatData")
    with pytest.raises(ArchiveError) as caught:
        checked(10000, "GetChatData")  # a bad parameter: not worth retrying
    assert not isinstance(caught.value, ArchiveRetryable)


def test_the_random_key_decrypts_with_the_matching_private_key_only() -> None:
    key, other = RSA.generate(2048), RSA.generate(2048)
    random_key = "0123456789abcdef0123456789abcdef"
    sealed = base64.b64encode(PKCS1_v1_5.new(key.publickey()).encrypt(
        random_key.encode())).decode()
    assert decrypt_random_key(key.export_key().decode(), sealed) == random_key
    with pytest.raises(ArchiveError, match="wrong key version"):
        decrypt_random_key(other.export_key().decode(), sealed)


async def test_a_malformed_record_kills_only_the_child_which_starts_again() -> None:
    child = ArchiveChild("wwcorp", "archive-secret")
    try:
        with pytest.raises(ArchiveRetryable):  # the child answers through its SDK
            await child.page(0, 10, proxy=CLOSED_PROXY, timeout_s=2)
        with pytest.raises(ChildDied) as died:
            await child.decrypt("not a key", "not a record")  # the SDK aborts the process
        assert died.value.returncode != 0
        # This process is unharmed, and the next call starts (and initialises) a new child.
        with pytest.raises(ArchiveRetryable):
            await child.page(0, 10, proxy=CLOSED_PROXY, timeout_s=2)
        assert child.starts == 2
    finally:
        await child.close()


async def test_a_child_that_hangs_is_killed_and_reported_dead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine.wecom import archive_child

    # A "python" that never answers (as a DecryptData or GetChatData stuck for good would).
    hangs = tmp_path / "hangs"
    hangs.write_text("#!/bin/sh\nexec sleep 600\n")
    hangs.chmod(0o755)
    monkeypatch.setattr(archive_child, "ANSWER_TIMEOUT_S", 0.5)
    child = ArchiveChild("corp", "secret", python=str(hangs))
    with pytest.raises(ChildDied) as died:
        await child.decrypt_many([("", "e30=")])
    assert died.value.returncode == -9  # killed, not left running
    await child.close()
