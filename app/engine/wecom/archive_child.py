"""The chat archive SDK in a child process: a record that makes the native library abort
(app/engine/wecom/archive_sdk.py) costs this child, never the service.

The child reads one JSON request per line on stdin and answers one JSON line on stdout:
`{"op": "init", "corp_id", "secret"}`, `{"op": "page", "seq", "limit", "proxy", "timeout_s"}`
(answer `{"page": <WeCom's JSON>}`), `{"op": "decrypt", "key", "message"}` (answer
`{"message": <the record's JSON>}`); an errcode is `{"error", "errcode", "retryable"}`. The secret
travels on stdin, never in argv or the environment, and nothing here logs.

`ArchiveChild` is the parent's side: it starts the child on first use, and a child that dies
mid-call (`ChildDied`, with its exit status) is started again on the next call.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from app.engine.wecom.archive_sdk import ArchiveError, ArchiveRetryable

MAX_LINE = 64 * 1024 * 1024  # a page of 1,000 records, base64, fits with room


class ChildDied(Exception):
    """The SDK's child process ended mid-call (the native library aborted on a record)."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"the chat archive SDK process died (exit status {returncode})")
        self.returncode = returncode


class ArchiveChild:
    def __init__(self, corp_id: str, secret: str, python: str = sys.executable) -> None:
        self._init = {"op": "init", "corp_id": corp_id, "secret": secret}
        self._python = python
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.starts = 0  # how many children this side has started (a restart counts)

    async def page(self, seq: int, limit: int, proxy: str = "", timeout_s: int = 10) -> Any:
        answer = await self.call({"op": "page", "seq": seq, "limit": limit, "proxy": proxy,
                                  "timeout_s": timeout_s})
        return json.loads(answer["page"])

    async def decrypt(self, key: str, message: str) -> Any:
        return json.loads((await self.call({"op": "decrypt", "key": key,
                                            "message": message}))["message"])

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request to the child, started (and its SDK initialised) if it is not running."""
        async with self._lock:
            if self._process is None or self._process.returncode is not None:
                await self._start()
            return await self._ask(request)

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            await process.wait()

    async def _start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self._python, "-m", "app.engine.wecom.archive_child", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=MAX_LINE)
        self.starts += 1
        await self._ask(self._init)

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            await process.stdin.drain()
            line = await process.stdout.readline()
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            raise ChildDied(await process.wait())
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            kind = ArchiveRetryable if answer["retryable"] else ArchiveError
            raise kind(answer["errcode"], answer["error"])
        return answer


def _serve() -> None:
    """The child's loop: one SDK, one request at a time, until stdin closes."""
    from app.engine.wecom.archive_sdk import FinanceSdk

    sdk: FinanceSdk | None = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "init":
                sdk = FinanceSdk()
                sdk.init(request["corp_id"], request["secret"])
                answer: dict[str, Any] = {"ok": True}
            elif sdk is None:
                answer = {"error": "not initialised", "errcode": -1, "retryable": False}
            elif request["op"] == "page":
                page = sdk.chat_data(request["seq"], request["limit"], request["proxy"], "",
                                     request["timeout_s"])
                answer = {"page": page.decode()}
            else:
                answer = {"message": sdk.decrypt(request["key"], request["message"]).decode()}
        except ArchiveError as exc:
            answer = {"error": str(exc), "errcode": exc.errcode,
                      "retryable": isinstance(exc, ArchiveRetryable)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
