"""WeCom callback cryptography: the WXBizMsgCrypt scheme (reference §2).

Ciphertext = Base64(AES-256-CBC(key, iv=key[:16], pad32(random16 | msg_len | msg | receive_id))).
Signature  = sha1_hex(concat(sort([token, timestamp, nonce, ciphertext]))).

Callers must verify the signature before decrypting (``decrypt_message``/``verify_url`` do):
the signature is keyed by the secret Token, so an attacker cannot reach the padding checks with
forged ciphertext, which is what makes the non-constant-time unpadding below acceptable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import string
import time
from typing import TYPE_CHECKING

from Crypto.Cipher import AES

from app.engine.wecom.xmlutil import XmlError, build_xml, parse_xml

if TYPE_CHECKING:
    from Crypto.Cipher._mode_cbc import CbcMode

# Library-local error codes from the official ierror files (reference §2.10).
VALIDATE_SIGNATURE_ERROR = -40001
PARSE_XML_ERROR = -40002
ILLEGAL_AES_KEY = -40004
VALIDATE_RECEIVE_ID_ERROR = -40005
DECRYPT_AES_ERROR = -40007
ILLEGAL_BUFFER = -40008
DECODE_BASE64_ERROR = -40010

# WeCom pads to 32-byte multiples although AES blocks are 16 bytes (reference §2.4).
_PAD_BLOCK = 32
_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4  # random bytes + big-endian msg_len
_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_NONCE_ALPHABET = string.ascii_letters + string.digits
_NONCE_LEN = 10
_REPLY_TAGS = ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")


class CryptoError(Exception):
    """A callback could not be verified or decrypted; ``code`` is the official library code.

    Raise a subclass (they carry a default code). Messages are short, fixed English reasons
    so that logs never receive key material or plaintext.
    """

    code: int

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        if code is not None:
            self.code = code


class SignatureError(CryptoError):
    code = VALIDATE_SIGNATURE_ERROR


class EnvelopeError(CryptoError):
    """An XML envelope is not parseable or lacks a required field."""

    code = PARSE_XML_ERROR


class AesKeyError(CryptoError):
    code = ILLEGAL_AES_KEY


class ReceiveIdError(CryptoError):
    code = VALIDATE_RECEIVE_ID_ERROR


class DecryptError(CryptoError):
    """Bad ciphertext (-40007), bad padding or msg_len (-40008), or bad Base64 (-40010)."""

    code = DECRYPT_AES_ERROR


def validate_aes_key(encoding_aes_key: str) -> bytes:
    """Return the 32-byte AES key encoded by a 43-character EncodingAESKey."""
    if not isinstance(encoding_aes_key, str) or not _AES_KEY_RE.fullmatch(encoding_aes_key):
        raise AesKeyError("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    # 43 Base64 chars carry 258 bits; the official libraries ignore the 2 spare bits, so we do too.
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise AesKeyError("EncodingAESKey does not decode to 32 bytes")
    return key


def _utf8(text: str) -> bytes:
    # Query values are untrusted; "surrogatepass" keeps hashing total even for lone surrogates.
    return text.encode("utf-8", "surrogatepass")


def _pad(data: bytes) -> bytes:
    # Yields a whole extra block of 0x20 when data is already aligned: the 32-byte quirk.
    count = _PAD_BLOCK - len(data) % _PAD_BLOCK
    return data + bytes([count]) * count


def _unpad(data: bytes) -> bytes:
    count = data[-1] if data else 0
    if not 1 <= count <= min(_PAD_BLOCK, len(data)):
        raise DecryptError("invalid padding value", ILLEGAL_BUFFER)
    if data[-count:] != bytes([count]) * count:
        raise DecryptError("inconsistent padding bytes", ILLEGAL_BUFFER)
    return data[:-count]


def _b64decode(text: str) -> bytes:
    # The transport is padded standard Base64, so anything else (spaces, '-', '_', a stray '=')
    # is damage; validate=True alone still tolerates surplus '=' after a complete quantum.
    try:
        raw: bytes | None = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):  # binascii.Error is a ValueError; non-ASCII str is too
        raw = None
    if raw is None or len(text) % 4:
        raise DecryptError("ciphertext is not valid Base64", DECODE_BASE64_ERROR)
    return raw


def _split_plaintext(body: bytes, receive_id: bytes) -> bytes:
    """Check the layout random16 | msg_len | msg | receive_id and return msg."""
    if len(body) < _HEADER_LEN:
        raise DecryptError("plaintext too short", ILLEGAL_BUFFER)
    msg_len = int.from_bytes(body[_RANDOM_LEN:_HEADER_LEN], "big")
    if msg_len > len(body) - _HEADER_LEN:
        raise DecryptError("message length exceeds plaintext", ILLEGAL_BUFFER)
    msg_end = _HEADER_LEN + msg_len
    # Byte-for-byte like the official Python library: an empty receive id must match "".
    if body[msg_end:] != receive_id:
        raise ReceiveIdError("receive id mismatch")
    return body[_HEADER_LEN:msg_end]


def _to_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptError("plaintext is not UTF-8", ILLEGAL_BUFFER) from None


def _now() -> str:
    return str(int(time.time()))


def _random_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(_NONCE_LEN))


def _xml_timestamp(timestamp: str) -> str | int:
    # WeCom writes <TimeStamp> bare; anything not canonical decimal stays a CDATA string so the
    # signed text survives the round trip exactly (int("007") would drop the zeros).
    if timestamp.isascii() and timestamp.isdigit() and str(int(timestamp)) == timestamp:
        return int(timestamp)
    return timestamp


def _reply_fields(reply_xml: bytes | str) -> dict[str, str]:
    try:
        fields = parse_xml(reply_xml)
    except XmlError:
        raise EnvelopeError("reply is not well-formed XML") from None
    values = {tag: fields.get(tag) for tag in _REPLY_TAGS}
    if not all(isinstance(value, str) for value in values.values()):
        raise EnvelopeError("reply lacks Encrypt, MsgSignature, TimeStamp or Nonce")
    return {tag: str(value) for tag, value in values.items()}


class WeComCrypto:
    """Sign, verify, encrypt and decrypt WeCom callbacks for one Token, EncodingAESKey and
    receive id."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = validate_aes_key(encoding_aes_key)
        self.receive_id = receive_id
        self._receive_id_bytes = receive_id.encode("utf-8")

    def _cipher(self) -> CbcMode:
        # CBC cipher objects are stateful (they chain), so each message gets a fresh one.
        return AES.new(self._key, AES.MODE_CBC, iv=self._key[:16])

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        # Sorting UTF-8 bytes equals sorting code points, and matches the byte-order wording.
        parts = sorted(_utf8(part) for part in (self._token, timestamp, nonce, encrypt))
        return hashlib.sha1(b"".join(parts)).hexdigest()

    def verify_signature(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        # Compare bytes: compare_digest rejects non-ASCII str, and `signature` is untrusted.
        if not isinstance(signature, str) or not hmac.compare_digest(
            _utf8(signature), expected.encode("ascii")
        ):
            raise SignatureError("signature mismatch")

    def encrypt(self, message: bytes | str, random16: bytes | None = None) -> str:
        data = message.encode("utf-8") if isinstance(message, str) else message
        prefix = os.urandom(_RANDOM_LEN) if random16 is None else random16
        if len(prefix) != _RANDOM_LEN:
            raise ValueError("random16 must be exactly 16 bytes")
        plain = prefix + len(data).to_bytes(4, "big") + data + self._receive_id_bytes
        return base64.b64encode(self._cipher().encrypt(_pad(plain))).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        raw = _b64decode(encrypt)
        if not raw or len(raw) % AES.block_size:
            raise DecryptError("ciphertext length is not a positive multiple of 16")
        body = _unpad(self._cipher().decrypt(raw))
        return _split_plaintext(body, self._receive_id_bytes)

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        echostr = self._signed_echostr(signature, timestamp, nonce, echostr)
        return _to_text(self.decrypt(echostr))

    def _signed_echostr(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        try:
            self.verify_signature(signature, timestamp, nonce, echostr)
            return echostr
        except SignatureError:
            if " " not in echostr:
                raise
        # Form-style query parsers turn a literal '+' into a space (reference §2.6).
        repaired = echostr.replace(" ", "+")
        self.verify_signature(signature, timestamp, nonce, repaired)
        return repaired

    def decrypt_message(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        self.verify_signature(signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_reply(self, message: str, nonce: str, timestamp: str | None = None) -> str:
        """Build the encrypted passive reply envelope of §2.8."""
        stamp = _now() if timestamp is None else timestamp
        encrypt = self.encrypt(message)
        return build_xml({
            "Encrypt": encrypt,
            "MsgSignature": self.signature(stamp, nonce, encrypt),
            "TimeStamp": _xml_timestamp(stamp),
            "Nonce": nonce,
        })

    def encrypt_callback(
        self,
        message: str,
        timestamp: str | None = None,
        nonce: str | None = None,
        agent_id: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Produce what WeCom POSTs: the signed query parameters and the XML envelope body."""
        stamp = _now() if timestamp is None else timestamp
        once = _random_nonce() if nonce is None else nonce
        encrypt = self.encrypt(message)
        fields: dict[str, str | int | list[str]] = {"ToUserName": self.receive_id,
                                                    "Encrypt": encrypt}
        if agent_id is not None:
            fields["AgentID"] = agent_id
        params = {"msg_signature": self.signature(stamp, once, encrypt), "timestamp": stamp,
                  "nonce": once}
        return params, build_xml(fields).encode("utf-8")

    def decrypt_reply(self, reply_xml: bytes | str) -> str:
        """Inverse of ``encrypt_reply``: parse, verify MsgSignature, decrypt."""
        fields = _reply_fields(reply_xml)
        encrypt = fields["Encrypt"]
        self.verify_signature(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], encrypt)
        return _to_text(self.decrypt(encrypt))
