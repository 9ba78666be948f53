"""Where the chat archive reader gets pages and opens records: WeCom's SDK, or the built-in
simulator. Both open records in a child process (app/engine/wecom/archive_child.py), so a record
that kills it costs that record only:

- a child that dies on a record is restarted and given that record alone once more (a child
  killed from outside, by an OOM killer or an operator, is not the record's fault);
- a record that kills it twice is `Unopened` (quarantined by the reader with its seq and raw
  ciphertext, to replay later), and the rest of the page is opened by the next child.
A record whose `publickey_ver` has no private key configured is `Unopened` too: it can be
replayed once the key is added (`sopbot archive replay`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from app.engine.logs import get_logger
from app.engine.wecom.api_archive import ChatData, ChatDataPage, SimGetChatData
from app.engine.wecom.archive_child import ArchiveChild, ChildDied
from app.engine.wecom.archive_sdk import (
    RETRYABLE,
    ArchiveError,
    ArchiveRetryable,
    decrypt_random_key,
)
from app.engine.wecom.client import WeComClient

log = get_logger("sopbot.archive")


@dataclass(frozen=True)
class Opened:
    record: ChatData
    data: Any  # the message JSON


@dataclass(frozen=True)
class Unopened:
    record: ChatData
    reason: str


class ArchiveSource(Protocol):
    async def fetch(self, seq: int, limit: int) -> list[ChatData]:
        """The records after `seq`, at most `limit`; ArchiveRetryable for network trouble."""
        ...

    async def open(self, records: list[ChatData]) -> list[Opened | Unopened]:
        """Each record opened, or why not, in order."""
        ...

    async def close(self) -> None: ...

    @property
    def child_starts(self) -> int: ...


class _ChildOpener:
    """Opens records in the child, restarting it around a record that kills it."""

    def __init__(self, child: ArchiveChild) -> None:
        self.child = child
        self.deaths = 0  # children that died opening records (an alert each)

    async def open(self, pairs: list[tuple[ChatData, str]]) -> list[Opened | Unopened]:
        done: list[Opened | Unopened] = []
        suspect: int | None = None  # the seq a child died on once
        while len(done) < len(pairs):
            rest = pairs[len(done):]
            batch = rest[:1] if rest[0][0].seq == suspect else rest
            try:
                answers = await self.child.decrypt_many([(key, r.encrypt_chat_msg)
                                                         for r, key in batch])
            except ChildDied as death:
                self.deaths += 1
                done += [_result(r, a) for (r, _), a in zip(batch, death.answers, strict=False)]
                if death.done >= len(batch):  # it died after its last answer: nothing lost
                    suspect = None
                    continue
                record = rest[death.done][0]
                log.error("archive_child_died", seq=record.seq, exit_status=death.returncode,
                          retried=record.seq == suspect)
                if record.seq == suspect:
                    done.append(Unopened(record, f"killed the decrypting process twice "
                                                 f"(exit status {death.returncode})"))
                    suspect = None
                else:
                    suspect = record.seq
                continue
            done += [_result(r, a) for (r, _), a in zip(batch, answers, strict=True)]
            suspect = None
        return done


class _NoKey(Exception):
    """A record's random key cannot be opened with the keys configured."""


def _result(record: ChatData, answer: Any) -> Opened | Unopened:
    if isinstance(answer, ArchiveError):
        return Unopened(record, f"DecryptData refused it: {answer}")
    return Opened(record, answer)


class SdkSource:
    """WeCom's SDK in a child process; the records' random keys opened here with the corp's
    private keys (pycryptodome, which does not abort on bad input)."""

    def __init__(self, corp_id: str, secret: str, keys: dict[int, str], proxy: str = "",
                 timeout_s: int = 10) -> None:
        self._child = ArchiveChild(corp_id, secret, backend="sdk")
        self._opener = _ChildOpener(self._child)
        self._keys, self._proxy, self._timeout_s = keys, proxy, timeout_s

    @property
    def child_starts(self) -> int:
        return self._child.starts

    async def fetch(self, seq: int, limit: int) -> list[ChatData]:
        try:
            page = await self._child.page(seq, limit, self._proxy, self._timeout_s)
        except ChildDied as death:  # GetChatData itself: worth another try, never a record's
            raise ArchiveRetryable(10003, str(death)) from None
        parsed = ChatDataPage.model_validate(page)
        if parsed.errcode:
            kind = ArchiveRetryable if parsed.errcode in RETRYABLE else ArchiveError
            raise kind(parsed.errcode, parsed.errmsg)
        return parsed.chatdata

    async def open(self, records: list[ChatData]) -> list[Opened | Unopened]:
        keyed: list[tuple[ChatData, str]] = []
        refused: dict[int, Unopened] = {}
        for record in records:
            try:
                keyed.append((record, self._random_key(record)))
            except _NoKey as exc:
                refused[record.seq] = Unopened(record, str(exc))
        opened = {o.record.seq: o for o in await self._opener.open(keyed)}
        return [refused.get(r.seq) or opened[r.seq] for r in records]

    def _random_key(self, record: ChatData) -> str:
        pem = self._keys.get(record.publickey_ver)
        if pem is None:
            raise _NoKey(f"no private key of publickey_ver {record.publickey_ver} "
                         f"(SOPBOT_ARCHIVE_KEYS)")
        try:
            return decrypt_random_key(pem, record.encrypt_random_key)
        except (ValueError, ArchiveError):  # base64, RSA padding, or the wrong key
            raise _NoKey(f"encrypt_random_key does not open with the private key of "
                         f"publickey_ver {record.publickey_ver}") from None

    async def close(self) -> None:
        await self._child.close()


class SimulatorSource:
    """The built-in simulator's archive: pages over its HTTP API (app/faces/sim/archive.py),
    records opened by the same kind of child as the SDK's."""

    def __init__(self, wecom: WeComClient, corp_id: str) -> None:
        self._wecom = wecom
        self._child = ArchiveChild(corp_id, "", backend="plain")
        self._opener = _ChildOpener(self._child)

    @property
    def child_starts(self) -> int:
        return self._child.starts

    @property
    def child(self) -> ArchiveChild:
        return self._child

    async def fetch(self, seq: int, limit: int) -> list[ChatData]:
        return (await self._wecom.call(SimGetChatData(seq=seq, limit=limit))).chatdata

    async def open(self, records: list[ChatData]) -> list[Opened | Unopened]:
        return await self._opener.open([(record, "") for record in records])

    async def close(self) -> None:
        await self._child.close()


def raw(record: ChatData) -> str:
    """The record as WeCom gave it, for the quarantine."""
    return json.dumps(record.model_dump(), ensure_ascii=False)
