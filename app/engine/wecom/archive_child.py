"""The chat archive SDK in a child process: a record that makes the native library abort
(app/engine/wecom/archive_sdk.py) costs this child, never the service.

The child reads one JSON request per line on stdin and answers one JSON line on stdout:
`{"op": "init", "backend", "corp_id", "secret"}`, `{"op": "page", "seq", "limit", "proxy",
"timeout_s"}` (answer `{"page": <WeCom's JSON>}`), `{"op": "decrypt", "key", "message"}` (answer
`{"message": <the record's JSON>}`), and `{"op": "decrypt_many", "records": [[key, message], …]}`
answered with one line per record, then `{"done": true}`: a child that dies mid-way has said which
record it was on. An errcode is `{"error", "errcode", "retryable"}`. The secret travels on stdin,
never in argv or the environment, and nothing here logs.

Backends: `sdk`, WeCom's library; `plain`, the simulator's records (the message JSON in base64),
which aborts on a record that is not, as the SDK does on a malformed one, so the supervision the
service relies on is exercised against the simulator by the same process death.

`ArchiveChild` is the parent's side: it starts the child on first use, and a child that dies
mid-call (`ChildDied`, with its exit status) is started again on the next call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any

from app.engine.wecom.archive_sdk import ArchiveError, ArchiveRetryable

MAX_LINE = 64 * 1024 * 1024  # a page of 1,000 records, base64, fits with room
# How long the child may take to answer before it is killed as hung: a record's DecryptData
# takes milliseconds; GetChatData has its own timeout (timeout_s), this is added to it.
ANSWER_TIMEOUT_S = 30.0


class ChildDied(Exception):
    """The SDK's child process ended mid-call (the native library aborted on a record)."""

    def __init__(self, returncode: int | None, answers: list[Any] | None = None) -> None:
        super().__init__(f"the chat archive SDK process died (exit status {returncode})")
        self.returncode = returncode
        self.answers = answers or []  # what a decrypt_many answered before it died

    @property
    def done(self) -> int:
        return len(self.answers)


class _Eof(Exception):
    """The child's stdout ended."""


class ArchiveChild:
    def __init__(self, corp_id: str, secret: str, python: str = sys.executable,
                 backend: str = "sdk") -> None:
        self._init = {"op": "init", "backend": backend, "corp_id": corp_id, "secret": secret}
        self._python = python
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.starts = 0  # how many children this side has started (a restart counts)

    async def page(self, seq: int, limit: int, proxy: str = "", timeout_s: int = 10) -> Any:
        answer = await self.call({"op": "page", "seq": seq, "limit": limit, "proxy": proxy,
                                  "timeout_s": timeout_s}, ANSWER_TIMEOUT_S + timeout_s)
        return json.loads(answer["page"])

    async def decrypt(self, key: str, message: str) -> Any:
        return json.loads((await self.call({"op": "decrypt", "key": key,
                                            "message": message}))["message"])

    async def decrypt_many(self, records: list[tuple[str, str]]) -> list[Any]:
        """Each record's JSON (or the ArchiveError that refused it), in order. ChildDied says
        how many came back before the death (`done`): the next record is the one it died on."""
        async with self._lock:
            if self._process is None or self._process.returncode is not None:
                await self._start()
            process = self._process
            assert process is not None and process.stdin is not None and process.stdout is not None
            answers: list[Any] = []
            try:
                process.stdin.write(json.dumps({"op": "decrypt_many",
                                                "records": records}).encode() + b"\n")
                await process.stdin.drain()
                while len(answers) < len(records):
                    answer = self._answer(await _line(process, ANSWER_TIMEOUT_S))
                    answers.append(_json(answer["message"]) if "message" in answer
                                   else ArchiveError(answer["errcode"], answer["failed"]))
                self._answer(await _line(process, ANSWER_TIMEOUT_S))  # done
            except (BrokenPipeError, ConnectionResetError, _Eof):
                raise ChildDied(await process.wait(), answers) from None
            return answers

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @staticmethod
    def _answer(line: bytes) -> dict[str, Any]:
        if not line:
            raise _Eof
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            kind = ArchiveRetryable if answer["retryable"] else ArchiveError
            raise kind(answer["errcode"], answer["error"])
        return answer

    async def call(self, request: dict[str, Any],
                   timeout_s: float | None = None) -> dict[str, Any]:
        """One request to the child, started (and its SDK initialised) if it is not running;
        a child that does not answer within `timeout_s` is killed (ChildDied)."""
        async with self._lock:
            if self._process is None or self._process.returncode is not None:
                await self._start()
            return await self._ask(request, timeout_s)

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:  # stuck in a call: GetChatData can take its whole timeout
                process.kill()
                await process.wait()

    async def _start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self._python, "-m", "app.engine.wecom.archive_child", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=MAX_LINE)
        self.starts += 1
        await self._ask(self._init)

    async def _ask(self, request: dict[str, Any],
                   timeout_s: float | None = None) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            await process.stdin.drain()
            line = await _line(process, timeout_s or ANSWER_TIMEOUT_S)
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            raise ChildDied(await process.wait())
        return self._answer(line)


async def _line(process: asyncio.subprocess.Process, timeout_s: float) -> bytes:
    """The child's next answer line; b"" (as at its death) once it is killed for hanging."""
    assert process.stdout is not None
    try:
        return await asyncio.wait_for(process.stdout.readline(), timeout_s)
    except TimeoutError:
        process.kill()
        return b""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return ArchiveError(-2, "the decrypted record is not JSON")


class _Plain:
    """The simulator's records: the message JSON in base64. Like the SDK, it aborts the
    process on a record it cannot read."""

    def init(self, corp_id: str, secret: str) -> None:
        pass

    def chat_data(self, *_: object) -> bytes:
        raise ArchiveError(10000, "the simulator's pages are read over HTTP, not here")

    def decrypt(self, key: str, encrypted: str) -> bytes:
        try:
            plain = base64.b64decode(encrypted, validate=True)
            json.loads(plain)
        except ValueError:
            os.abort()
        return plain


def _serve() -> None:
    """The child's loop: one SDK, one request at a time, until stdin closes."""
    sdk: Any = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "init":
                sdk = _backend(request.get("backend", "sdk"))
                sdk.init(request["corp_id"], request["secret"])
                _say({"ok": True})
            elif sdk is None:
                _say({"error": "not initialised", "errcode": -1, "retryable": False})
            elif request["op"] == "page":
                page = sdk.chat_data(request["seq"], request["limit"], request["proxy"], "",
                                     request["timeout_s"])
                _say({"page": page.decode()})
            elif request["op"] == "decrypt_many":
                for key, message in request["records"]:
                    _say(_decrypted(sdk, key, message))
                _say({"done": True})
            else:
                _say({"message": sdk.decrypt(request["key"], request["message"]).decode()})
        except ArchiveError as exc:
            _say({"error": str(exc), "errcode": exc.errcode,
                  "retryable": isinstance(exc, ArchiveRetryable)})


def _decrypted(sdk: Any, key: str, message: str) -> dict[str, Any]:
    """One record of a decrypt_many: its JSON, or the errcode that refused it (the batch goes
    on)."""
    try:
        return {"message": sdk.decrypt(key, message).decode()}
    except ArchiveError as exc:
        return {"failed": str(exc), "errcode": exc.errcode}


def _backend(name: str) -> Any:
    if name == "plain":
        return _Plain()
    from app.engine.wecom.archive_sdk import FinanceSdk
    return FinanceSdk()


def _say(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _serve()
