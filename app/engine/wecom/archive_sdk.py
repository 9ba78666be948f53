"""The chat archive (会话内容存档) SDK: WeCom's own libWeWorkFinanceSdk_C.so, bound with ctypes
(wecom-reference §5.15). It ships inside the PyPI wheel `pyweworkfinance`; sopbot only locates
the library file there and never imports that wheel's Python wrapper (it logs the secret).

The library runs in a child process only (app/engine/wecom/archive_child.py): `DecryptData` on a
malformed record aborts the whole process with an uncaught C++ exception, which must cost the
child, not the service (and loaded into a process full of other native libraries, the test
runner's, the SDK has been seen to abort on its own). This module is what the child loads,
plus the RSA step, which needs no native code and runs anywhere.
"""

from __future__ import annotations

import base64
import ctypes
import importlib.util
import platform
from pathlib import Path

from Crypto.Cipher import PKCS1_v1_5
from Crypto.PublicKey import RSA

# The SDK's errcodes (its header): network, parse and system errors are worth retrying.
RETRYABLE = {10001: "network error", 10002: "data parse error", 10003: "system error"}
PAGE_LIMIT = 1000  # GetChatData's largest page
LIBRARY = {"x86_64": "libWeWorkFinanceSdk_C_x86.so", "amd64": "libWeWorkFinanceSdk_C_x86.so",
           "aarch64": "libWeWorkFinanceSdk_C_arm.so", "arm64": "libWeWorkFinanceSdk_C_arm.so"}


class ArchiveError(Exception):
    """The SDK answered an errcode: a configuration or data problem for an operator."""

    def __init__(self, errcode: int, what: str) -> None:
        super().__init__(f"chat archive SDK: {what} failed with errcode {errcode}")
        self.errcode = errcode


class ArchiveRetryable(ArchiveError):
    """10001-10003: the network, WeCom's answer or WeCom itself; try again later."""


def library_path() -> Path:
    """The SDK's .so for this machine, inside the installed pyweworkfinance wheel."""
    name = LIBRARY.get(platform.machine().lower())
    if name is None:
        raise ArchiveError(-1, f"no chat archive SDK for machine {platform.machine()!r}")
    spec = importlib.util.find_spec("pyweworkfinance")  # locates it; does not run its code
    if spec is None or not spec.submodule_search_locations:
        raise ArchiveError(-1, "the pyweworkfinance wheel (which ships the SDK) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "libs" / "linux" / name


def checked(code: int, what: str) -> None:
    if code == 0:
        return
    if code in RETRYABLE:
        raise ArchiveRetryable(code, f"{what} ({RETRYABLE[code]})")
    raise ArchiveError(code, what)


class FinanceSdk:
    """One SDK instance (NewSdk + Init). Blocking calls: the child process makes them."""

    def __init__(self, path: Path | None = None) -> None:
        lib = ctypes.CDLL(str(path or library_path()))
        lib.NewSdk.restype = ctypes.c_void_p
        lib.Init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.NewSlice.restype = ctypes.c_void_p
        lib.FreeSlice.argtypes = [ctypes.c_void_p]
        lib.GetContentFromSlice.argtypes = [ctypes.c_void_p]
        lib.GetContentFromSlice.restype = ctypes.c_void_p
        lib.GetSliceLen.argtypes = [ctypes.c_void_p]
        lib.GetChatData.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_uint,
                                    ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                                    ctypes.c_void_p]
        lib.DecryptData.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.DestroySdk.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._sdk = lib.NewSdk()

    def init(self, corp_id: str, secret: str) -> None:
        checked(self._lib.Init(self._sdk, corp_id.encode(), secret.encode()), "Init")

    def chat_data(self, seq: int, limit: int, proxy: str = "", password: str = "",
                  timeout_s: int = 10) -> bytes:
        """The page after `seq` (JSON, as WeCom sent it)."""
        return self._with_slice("GetChatData", lambda out: self._lib.GetChatData(
            self._sdk, seq, min(limit, PAGE_LIMIT), proxy.encode(), password.encode(),
            timeout_s, out))

    def decrypt(self, key: str, encrypted: str) -> bytes:
        """One record's message JSON, from its decrypted random key and encrypt_chat_msg.
        Malformed input aborts the process: only ever called in the child."""
        return self._with_slice("DecryptData", lambda out: self._lib.DecryptData(
            key.encode(), encrypted.encode(), out))

    def close(self) -> None:
        self._lib.DestroySdk(self._sdk)

    def _with_slice(self, what: str, call: object) -> bytes:
        out = self._lib.NewSlice()
        try:
            checked(call(out), what)  # type: ignore[operator]  # a lambda over the slice
            size = self._lib.GetSliceLen(out)
            return ctypes.string_at(self._lib.GetContentFromSlice(out), size)
        finally:
            self._lib.FreeSlice(out)


def decrypt_random_key(private_key_pem: str, encrypt_random_key: str) -> str:
    """A record's `encrypt_random_key` (RSA PKCS#1 v1.5 under the corp's public key of the
    record's publickey_ver) decrypted with the matching private key: DecryptData's key."""
    cipher = PKCS1_v1_5.new(RSA.import_key(private_key_pem))
    plain = cipher.decrypt(base64.b64decode(encrypt_random_key), None)
    if plain is None:
        raise ArchiveError(-1, "the random key does not decrypt with this private key "
                               "(wrong key version?)")
    return bytes(plain).decode()
