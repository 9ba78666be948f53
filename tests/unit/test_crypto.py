"""Tests for app.engine.wecom.crypto (WXBizMsgCrypt, reference §2).

Independent oracles: the official sample vectors, wechatpy's implementation, and raw AES done
here with pycryptodome so padding and layout are checked without going through the module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
import time
from collections.abc import Callable

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WechatpyCrypto
from wechatpy.exceptions import InvalidSignatureException

import app.engine.wecom.crypto as crypto_module
from app.engine.wecom.crypto import (
    AesKeyError,
    CryptoError,
    DecryptError,
    EnvelopeError,
    ReceiveIdError,
    SignatureError,
    WeComCrypto,
    validate_aes_key,
)
from app.engine.wecom.xmlutil import parse_xml

# Values of the official WXBizMsgCrypt samples (Token, EncodingAESKey, CorpID and requests).
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
SAMPLE_GET = {
    "signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
SAMPLE_ECHO = "1616140317555161061"
SAMPLE_POST_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
SAMPLE_POST_TIMESTAMP = "1409659813"
SAMPLE_POST_NONCE = "1372623149"
SAMPLE_POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczcd"
    "CUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4"
    "Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+"
    "KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4X"
    "XZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGH"
    "BZZIs2pDBS8R07+qN+E7Q=="
)
OTHER_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
RAW_KEY = base64.b64decode(AES_KEY + "=")
FIXED_RANDOM = b"0123456789abcdef"
ALNUM = string.ascii_letters + string.digits
LIBRARY_CODES = {-40001, -40002, -40004, -40005, -40007, -40008, -40010}

cjk_text = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF))
any_text = st.one_of(st.text(), cjk_text, st.text(alphabet=st.sampled_from("中文ab<>&]]> \n")))
alnum_text = st.text(alphabet=ALNUM, min_size=1, max_size=24)
aes_keys = st.text(alphabet=ALNUM, min_size=43, max_size=43)


def make(receive_id: str = CORP_ID, key: str = AES_KEY, token: str = TOKEN) -> WeComCrypto:
    return WeComCrypto(token, key, receive_id)


def raw_decrypt(encrypt: str, key: bytes = RAW_KEY) -> bytes:
    """Plaintext including padding, decrypted here without the module under test."""
    return AES.new(key, AES.MODE_CBC, iv=key[:16]).decrypt(base64.b64decode(encrypt))


def forge(plaintext: bytes, key: bytes = RAW_KEY) -> str:
    """Encrypt an arbitrary (already block-aligned) plaintext, bypassing the module's padding."""
    return base64.b64encode(AES.new(key, AES.MODE_CBC, iv=key[:16]).encrypt(plaintext)).decode()


def layout(msg: bytes, receive_id: bytes = CORP_ID.encode()) -> bytes:
    return FIXED_RANDOM + len(msg).to_bytes(4, "big") + msg + receive_id


def msg_for_pad(pad: int, receive_id: str = CORP_ID) -> bytes:
    """A message whose padded plaintext ends in exactly `pad` bytes of padding."""
    base = 20 + len(receive_id.encode())
    size = (-(base + pad)) % 32
    return b"x" * size


class FixedRandomPrp(PrpCrypto):
    """wechatpy's cipher with the random prefix pinned, to compare ciphertexts byte for byte."""

    def get_random_string(self) -> str:
        return FIXED_RANDOM.decode()


def expect(code: int, action: Callable[[], object], kind: type[CryptoError] = CryptoError) -> CryptoError:
    with pytest.raises(kind) as info:
        action()
    assert info.value.code == code
    return info.value


# --- official sample vectors ------------------------------------------------------------------


def test_official_get_vector_verifies_and_returns_echo() -> None:
    assert make().verify_url(**SAMPLE_GET) == SAMPLE_ECHO


def test_official_post_vector_decrypts_and_uses_pad_30() -> None:
    msg = make().decrypt_message(
        SAMPLE_POST_SIGNATURE, SAMPLE_POST_TIMESTAMP, SAMPLE_POST_NONCE, SAMPLE_POST_ENCRYPT
    )
    fields = parse_xml(msg)
    assert fields["Content"] == "hello"
    assert fields["ToUserName"] == CORP_ID
    assert fields["AgentID"] == "218"
    # The reference's warning: a 16-byte PKCS#7 unpadder would reject this real message.
    assert raw_decrypt(SAMPLE_POST_ENCRYPT)[-1] == 30


def test_official_signature_formula() -> None:
    expected = hashlib.sha1(
        "".join(sorted([TOKEN, SAMPLE_GET["timestamp"], SAMPLE_GET["nonce"], SAMPLE_GET["echostr"]])).encode()
    ).hexdigest()
    got = make().signature(SAMPLE_GET["timestamp"], SAMPLE_GET["nonce"], SAMPLE_GET["echostr"])
    assert got == expected == SAMPLE_GET["signature"]


# --- round trips and layout -------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["", "hello", "<xml><Content><![CDATA[hi]]></Content></xml>", "企业微信 消息长度按字节计算 ✓", "a" * 5000],
)
def test_round_trip(message: str) -> None:
    c = make()
    assert c.decrypt(c.encrypt(message)) == message.encode()


def test_encrypt_accepts_bytes_and_str_alike() -> None:
    c = make()
    text = "中文"
    assert c.encrypt(text, FIXED_RANDOM) == c.encrypt(text.encode(), FIXED_RANDOM)


def test_plaintext_layout_is_random_len_msg_receive_id_pad() -> None:
    msg = "中文 text".encode()
    plain = raw_decrypt(make().encrypt(msg, FIXED_RANDOM))
    pad = plain[-1]
    assert plain[:-pad] == layout(msg)
    # msg_len counts UTF-8 bytes, big-endian.
    assert plain[16:20] == len(msg).to_bytes(4, "big") == b"\x00\x00\x00\x0b"


@pytest.mark.parametrize("pad", range(1, 33))
def test_every_pad_value_round_trips(pad: int) -> None:
    c = make()
    msg = msg_for_pad(pad)
    encrypt = c.encrypt(msg)
    plain = raw_decrypt(encrypt)
    assert len(plain) % 32 == 0
    assert plain[-pad:] == bytes([pad]) * pad
    assert c.decrypt(encrypt) == msg


def test_aligned_plaintext_gets_a_whole_extra_block_of_0x20() -> None:
    msg = msg_for_pad(32)
    assert (20 + len(msg) + len(CORP_ID)) % 32 == 0
    plain = raw_decrypt(make().encrypt(msg, FIXED_RANDOM))
    assert plain[-32:] == b"\x20" * 32
    assert len(plain) == len(layout(msg)) + 32


def test_empty_receive_id_round_trip_and_layout() -> None:
    c = make(receive_id="")
    plain = raw_decrypt(c.encrypt("ping", FIXED_RANDOM))
    assert plain[: -plain[-1]] == layout(b"ping", b"")
    assert c.decrypt(c.encrypt("ping")) == b"ping"


def test_random_prefix_defaults_to_fresh_bytes() -> None:
    c = make()
    first, second = c.encrypt("same"), c.encrypt("same")
    assert first != second
    assert raw_decrypt(first)[:16] != raw_decrypt(second)[:16]


def test_random16_must_be_16_bytes() -> None:
    with pytest.raises(ValueError):
        make().encrypt("x", b"short")


def test_ciphertext_is_standard_base64() -> None:
    # Hit both '+' and '/' somewhere across a few messages; '-' and '_' must never appear.
    joined = "".join(make().encrypt(str(i) * 40) for i in range(40))
    assert "-" not in joined and "_" not in joined
    assert "+" in joined and "/" in joined


# --- wechatpy, both directions ----------------------------------------------------------------


def test_ciphertext_is_byte_identical_to_wechatpy() -> None:
    message = "<xml><Content><![CDATA[一致 identical]]></Content></xml>"
    theirs = FixedRandomPrp(RAW_KEY).encrypt(message, CORP_ID)  # wechatpy returns bytes here
    assert isinstance(theirs, bytes)
    assert make().encrypt(message, FIXED_RANDOM) == theirs.decode()


def test_wechatpy_reply_decrypted_by_us() -> None:
    message = "<xml><Content><![CDATA[来自 wechatpy]]></Content></xml>"
    reply = WechatpyCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(message, "nonce1", "1700000000")
    assert make().decrypt_reply(reply) == message


def test_wechatpy_encrypted_callback_decrypted_by_us() -> None:
    message = "<xml><MsgType><![CDATA[text]]></MsgType></xml>"
    reply = WechatpyCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(message, "n2", "1700000001")
    fields = parse_xml(reply)
    got = make().decrypt_message(fields["MsgSignature"], "1700000001", "n2", fields["Encrypt"])
    assert got == message.encode()


def test_our_callback_decrypted_by_wechatpy() -> None:
    message = "<xml><Content><![CDATA[发给 wechatpy]]></Content></xml>"
    params, body = make().encrypt_callback(message, "1700000002", "abc123", agent_id="1000002")
    theirs = WechatpyCrypto(TOKEN, AES_KEY, CORP_ID)
    got = theirs.decrypt_message(body, params["msg_signature"], params["timestamp"], params["nonce"])
    assert got == message  # wechatpy returns str, we return bytes


def test_our_reply_decrypted_by_wechatpy() -> None:
    message = "<xml><Content><![CDATA[reply 回复]]></Content></xml>"
    reply = make().encrypt_reply(message, "nonce9", "1700000003")
    fields = parse_xml(reply)
    theirs = WechatpyCrypto(TOKEN, AES_KEY, CORP_ID)
    assert theirs.decrypt_message(reply, fields["MsgSignature"], "1700000003", "nonce9") == message


def test_wechatpy_rejects_our_reply_with_wrong_token() -> None:
    reply = make().encrypt_reply("x", "n", "1700000004")
    fields = parse_xml(reply)
    with pytest.raises(InvalidSignatureException):
        WechatpyCrypto("other", AES_KEY, CORP_ID).decrypt_message(reply, fields["MsgSignature"], "1700000004", "n")


def test_get_verification_both_directions_with_wechatpy() -> None:
    ours, theirs = make(), WechatpyCrypto(TOKEN, AES_KEY, CORP_ID)
    echostr = ours.encrypt("echo-42")
    assert theirs.check_signature(ours.signature("1", "2", echostr), "1", "2", echostr) == "echo-42"
    their_echostr = PrpCrypto(RAW_KEY).encrypt("echo-43", CORP_ID).decode()
    assert ours.verify_url(ours.signature("3", "4", their_echostr), "3", "4", their_echostr) == "echo-43"


def test_empty_receive_id_interoperates_with_wechatpy() -> None:
    ours, theirs = make(receive_id=""), WechatpyCrypto(TOKEN, AES_KEY, "")
    echostr = ours.encrypt("robot")
    assert theirs.check_signature(ours.signature("1", "2", echostr), "1", "2", echostr) == "robot"
    reply = theirs.encrypt_message("智能机器人", "n", "1700000005")
    assert ours.decrypt_reply(reply) == "智能机器人"


@pytest.mark.parametrize("pad", [1, 16, 17, 30, 32])
def test_wechatpy_decrypts_every_pad_shape(pad: int) -> None:
    msg = msg_for_pad(pad).decode()
    params, body = make().encrypt_callback(msg, "1", "2")
    theirs = WechatpyCrypto(TOKEN, AES_KEY, CORP_ID)
    assert theirs.decrypt_message(body, params["msg_signature"], "1", "2") == msg


@settings(max_examples=200, deadline=None)
@given(message=any_text, token=alnum_text, nonce=alnum_text, timestamp=st.integers(0, 2**34).map(str), key=aes_keys)
def test_property_wechatpy_to_us(message: str, token: str, nonce: str, timestamp: str, key: str) -> None:
    reply = WechatpyCrypto(token, key, CORP_ID).encrypt_message(message, nonce, timestamp)
    assert make(key=key, token=token).decrypt_reply(reply) == message


@settings(max_examples=200, deadline=None)
@given(message=any_text, token=alnum_text, nonce=alnum_text, timestamp=st.integers(0, 2**34).map(str), key=aes_keys)
def test_property_us_to_wechatpy(message: str, token: str, nonce: str, timestamp: str, key: str) -> None:
    params, body = make(key=key, token=token).encrypt_callback(message, timestamp, nonce)
    theirs = WechatpyCrypto(token, key, CORP_ID)
    assert theirs.decrypt_message(body, params["msg_signature"], timestamp, nonce) == message


@settings(max_examples=200, deadline=None)
@given(message=any_text, receive_id=st.one_of(st.just(""), alnum_text))
def test_property_ciphertext_identical_to_wechatpy(message: str, receive_id: str) -> None:
    theirs = FixedRandomPrp(RAW_KEY).encrypt(message, receive_id).decode()
    assert make(receive_id=receive_id).encrypt(message, FIXED_RANDOM) == theirs


# --- property tests ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=400), receive_id=st.text(max_size=40), key=aes_keys)
def test_property_round_trip_bytes(message: bytes, receive_id: str, key: str) -> None:
    c = make(receive_id=receive_id, key=key)
    encrypt = c.encrypt(message)
    assert c.decrypt(encrypt) == message
    plain = raw_decrypt(encrypt, validate_aes_key(key))
    unpadded = 20 + len(message) + len(receive_id.encode())
    assert len(plain) % 32 == 0
    assert plain[-1] == 32 - unpadded % 32  # a full block (32) when already aligned


@settings(max_examples=200, deadline=None)
@given(message=any_text, receive_id=st.one_of(st.just(""), cjk_text, alnum_text))
def test_property_round_trip_text(message: str, receive_id: str) -> None:
    c = make(receive_id=receive_id)
    assert c.decrypt(c.encrypt(message)).decode() == message


@settings(max_examples=100, deadline=None)
@given(blocks=st.integers(1, 12), receive_id=st.one_of(st.just(""), alnum_text))
def test_property_aligned_lengths_pad_a_full_block(blocks: int, receive_id: str) -> None:
    size = 32 * blocks - 20 - len(receive_id)
    message = b"m" * max(size, 0)
    c = make(receive_id=receive_id)
    encrypt = c.encrypt(message)
    if size >= 0:
        assert raw_decrypt(encrypt)[-32:] == b"\x20" * 32
    assert c.decrypt(encrypt) == message


@settings(max_examples=200, deadline=None)
@given(token=st.text(), timestamp=st.text(), nonce=st.text(), encrypt=st.text())
def test_property_signature_matches_reference_formula(token: str, timestamp: str, nonce: str, encrypt: str) -> None:
    c = WeComCrypto(token, AES_KEY, CORP_ID)
    # Independent formula: sort the str values (code-point order), sha1 over the UTF-8 concat.
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()
    assert c.signature(timestamp, nonce, encrypt) == expected
    c.verify_signature(expected, timestamp, nonce, encrypt)


@settings(max_examples=200, deadline=None)
@given(token=alnum_text, nonce=alnum_text, other=st.text(alphabet="0123456789abcdef", min_size=40, max_size=40))
def test_property_verify_rejects_other_signatures(token: str, nonce: str, other: str) -> None:
    c = make(token=token)
    right = c.signature("1700000000", nonce, "enc")
    if other != right:
        expect(-40001, lambda: c.verify_signature(other, "1700000000", nonce, "enc"), SignatureError)
    else:
        c.verify_signature(other, "1700000000", nonce, "enc")


@settings(max_examples=300, deadline=None)
@given(garbage=st.one_of(st.text(), st.binary().map(lambda b: base64.b64encode(b).decode())))
def test_property_decrypt_garbage_raises_only_crypto_errors(garbage: str) -> None:
    try:
        result = make().decrypt(garbage)
    except CryptoError as exc:
        assert exc.code in LIBRARY_CODES
    else:  # only possible by astronomically lucky padding + receive id; must then be bytes
        assert isinstance(result, bytes)


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=8).map(lambda b: (b * 200)[: 32 * (1 + b[0] % 4)]))
def test_property_forged_plaintexts_raise_only_crypto_errors(plaintext: bytes) -> None:
    # Arbitrary aligned plaintexts exercise the unpad/length/receive-id checks directly.
    # A repeating pattern of period <= 8 can never end with CORP_ID, so this always fails.
    with pytest.raises(CryptoError) as info:
        make().decrypt(forge(plaintext))
    assert info.value.code in {-40005, -40008}


# --- negative cases ---------------------------------------------------------------------------


def test_bad_signature_raises_40001() -> None:
    c = make()
    bad = dict(SAMPLE_GET, signature="0" * 40)
    expect(-40001, lambda: c.verify_url(**bad), SignatureError)
    expect(-40001, lambda: c.decrypt_message("0" * 40, "1", "2", c.encrypt("x")), SignatureError)


@pytest.mark.parametrize("signature", ["", "é" * 40, SAMPLE_GET["signature"].upper(), "\ud800"])
def test_odd_signatures_are_signature_errors_not_type_errors(signature: str) -> None:
    expect(-40001, lambda: make().verify_url(**dict(SAMPLE_GET, signature=signature)), SignatureError)


def test_wrong_token_fails_signature() -> None:
    expect(-40001, lambda: make(token="other").verify_url(**SAMPLE_GET), SignatureError)


def test_tampered_ciphertext_is_caught_by_the_signature() -> None:
    c = make()
    params, body = c.encrypt_callback("<xml>pay 1</xml>", "1", "2")
    encrypt = str(parse_xml(body)["Encrypt"])
    raw = bytearray(base64.b64decode(encrypt))
    raw[5] ^= 0x01  # first block: only random16 is garbled and a msg byte flips
    tampered = base64.b64encode(bytes(raw)).decode()
    # CBC is malleable: without the signature the tampered text decrypts to a *different* message.
    assert c.decrypt(tampered) != b"<xml>pay 1</xml>"
    expect(-40001, lambda: c.decrypt_message(params["msg_signature"], "1", "2", tampered), SignatureError)


def test_tampered_last_block_breaks_padding_or_receive_id() -> None:
    raw = bytearray(base64.b64decode(make().encrypt("hello")))
    raw[-1] ^= 0x80
    with pytest.raises(CryptoError) as info:
        make().decrypt(base64.b64encode(bytes(raw)).decode())
    assert info.value.code in {-40005, -40008}


@pytest.mark.parametrize(
    ("sender", "receiver"),
    [(CORP_ID, "wwother"), ("", CORP_ID), (CORP_ID, ""), ("corp", "corpX"), ("corpX", "corp"), ("企业", "企")],
)
def test_wrong_receive_id_raises_40005(sender: str, receiver: str) -> None:
    encrypt = make(receive_id=sender).encrypt("hello")
    error = expect(-40005, lambda: make(receive_id=receiver).decrypt(encrypt), ReceiveIdError)
    assert sender not in str(error) or sender == ""  # the found id is plaintext: never echo it


@pytest.mark.parametrize("garbage", ["!!!!", "abc", "abcd=", "a-b_c-d_", "密文密文", "YWJj ZGVm", "YQ==YQ=="])
def test_bad_base64_raises_40010(garbage: str) -> None:
    expect(-40010, lambda: make().decrypt(garbage), DecryptError)


def test_url_safe_variant_of_a_real_ciphertext_is_rejected() -> None:
    encrypt = SAMPLE_POST_ENCRYPT.replace("+", "-").replace("/", "_")
    expect(-40010, lambda: make().decrypt(encrypt), DecryptError)


@pytest.mark.parametrize("size", [0, 1, 15, 17, 33, 47])
def test_ciphertext_not_a_multiple_of_16_raises_40007(size: int) -> None:
    encrypt = base64.b64encode(b"\x01" * size).decode()
    expect(-40007, lambda: make().decrypt(encrypt), DecryptError)


def test_pad_value_zero_raises_40008() -> None:
    plain = layout(b"hi")
    plain += b"\x00" * (-len(plain) % 32 or 32)
    expect(-40008, lambda: make().decrypt(forge(plain)), DecryptError)


def test_pad_value_33_raises_40008() -> None:
    plain = layout(b"x" * 25)  # 16+4+25+18 = 63 bytes
    plain += b"\x21" * (96 - len(plain))  # 33 bytes of 0x21
    assert len(plain) == 96
    expect(-40008, lambda: make().decrypt(forge(plain)), DecryptError)


def test_inconsistent_pad_bytes_raise_40008() -> None:
    plain = layout(b"hi")
    count = 32 - len(plain) % 32
    plain += bytes([count ^ 1]) * (count - 1) + bytes([count])
    expect(-40008, lambda: make().decrypt(forge(plain)), DecryptError)


def test_pad_longer_than_plaintext_raises_40008() -> None:
    expect(-40008, lambda: make().decrypt(forge(b"\x20" * 16)), DecryptError)


def test_plaintext_shorter_than_header_raises_40008() -> None:
    expect(-40008, lambda: make().decrypt(forge(b"r" * 16 + bytes([16]) * 16)), DecryptError)


def _with_msg_len(msg_len: int, receive_id: bytes = b"") -> str:
    body = FIXED_RANDOM + msg_len.to_bytes(4, "big") + b"abcd" + receive_id
    count = 32 - len(body) % 32
    return forge(body + bytes([count]) * count)


def test_msg_len_too_large_raises_40008() -> None:
    expect(-40008, lambda: make(receive_id="").decrypt(_with_msg_len(5)), DecryptError)
    expect(-40008, lambda: make(receive_id="").decrypt(_with_msg_len(2**32 - 1)), DecryptError)


def test_msg_len_at_the_limit_is_accepted() -> None:
    # msg_len == len(body) - 20 exactly means an empty receive id tail.
    assert make(receive_id="").decrypt(_with_msg_len(4)) == b"abcd"
    assert make(receive_id="ab").decrypt(_with_msg_len(4, b"ab")) == b"abcd"


def test_decrypt_errors_do_not_leak_plaintext() -> None:
    secret = "top-secret-content"
    encrypt = make(receive_id="a").encrypt(secret)
    error = expect(-40005, lambda: make(receive_id="b").decrypt(encrypt), ReceiveIdError)
    assert secret not in str(error) and AES_KEY not in str(error)


@pytest.mark.parametrize(
    "key",
    [
        AES_KEY[:42],
        AES_KEY + "A",
        AES_KEY + "=",
        AES_KEY[:42] + "+",
        AES_KEY[:42] + "/",
        AES_KEY[:42] + "-",
        AES_KEY[:42] + "\uff11",  # full-width digit: str.isalnum() would accept it
        AES_KEY[:42] + "\u0663",  # Arabic-Indic digit
        " " + AES_KEY[:42],
        "",
    ],
)
def test_bad_aes_keys_raise_40004(key: str) -> None:
    expect(-40004, lambda: validate_aes_key(key), AesKeyError)
    error = expect(-40004, lambda: WeComCrypto(TOKEN, key, CORP_ID), AesKeyError)
    assert key not in str(error) or key == ""


def test_non_string_aes_key_raises_40004() -> None:
    expect(-40004, lambda: validate_aes_key(None), AesKeyError)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(key=aes_keys)
def test_property_any_43_alnum_chars_is_a_32_byte_key(key: str) -> None:
    assert validate_aes_key(key) == base64.b64decode(key + "=")
    assert len(validate_aes_key(key)) == 32


def test_wrong_key_fails_to_decrypt() -> None:
    encrypt = make().encrypt("hello")
    with pytest.raises(CryptoError) as info:
        make(key=OTHER_KEY).decrypt(encrypt)
    assert info.value.code in {-40005, -40008}


def test_error_classes_carry_their_codes() -> None:
    assert SignatureError("x").code == -40001
    assert EnvelopeError("x").code == -40002
    assert AesKeyError("x").code == -40004
    assert ReceiveIdError("x").code == -40005
    assert DecryptError("x").code == -40007
    assert DecryptError("x", -40010).code == -40010
    assert issubclass(DecryptError, CryptoError) and str(DecryptError("short reason")) == "short reason"


# --- GET URL verification ---------------------------------------------------------------------


def test_verify_url_repairs_plus_signs_turned_into_spaces() -> None:
    assert "+" in SAMPLE_GET["echostr"]
    spaced = dict(SAMPLE_GET, echostr=SAMPLE_GET["echostr"].replace("+", " "))
    assert make().verify_url(**spaced) == SAMPLE_ECHO


def test_verify_url_space_repair_still_needs_a_valid_signature() -> None:
    spaced = dict(SAMPLE_GET, echostr=SAMPLE_GET["echostr"].replace("+", " "), signature="1" * 40)
    expect(-40001, lambda: make().verify_url(**spaced), SignatureError)


def test_verify_url_with_genuine_signature_over_spaces_is_not_rewritten() -> None:
    # If the signature really covers the spaced text, verification passes and Base64 then fails.
    c = make()
    spaced = SAMPLE_GET["echostr"].replace("+", " ")
    expect(-40010, lambda: c.verify_url(c.signature("1", "2", spaced), "1", "2", spaced), DecryptError)


def test_verify_url_returns_text_for_cjk_echo() -> None:
    c = make()
    echostr = c.encrypt("回声")
    assert c.verify_url(c.signature("1", "2", echostr), "1", "2", echostr) == "回声"


def test_verify_url_rejects_non_utf8_echo() -> None:
    c = make()
    echostr = c.encrypt(b"\xff\xfe")
    expect(-40008, lambda: c.verify_url(c.signature("1", "2", echostr), "1", "2", echostr), DecryptError)


def test_verify_signature_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(crypto_module.hmac, "compare_digest", spy)
    c = make()
    c.verify_signature(SAMPLE_GET["signature"], SAMPLE_GET["timestamp"], SAMPLE_GET["nonce"], SAMPLE_GET["echostr"])
    with pytest.raises(SignatureError):
        c.verify_signature("0" * 40, "1", "2", "3")
    assert len(calls) == 2
    assert calls[0] == (SAMPLE_GET["signature"].encode(), SAMPLE_GET["signature"].encode())


# --- envelopes --------------------------------------------------------------------------------


def test_encrypt_reply_envelope_shape() -> None:
    c = make()
    reply = c.encrypt_reply("<xml>r</xml>", "nonce1", "1700000000")
    assert reply.startswith("<xml><Encrypt><![CDATA[")
    assert "<TimeStamp>1700000000</TimeStamp>" in reply  # bare number, like WeCom
    assert "<Nonce><![CDATA[nonce1]]></Nonce>" in reply
    fields = parse_xml(reply)
    assert list(fields) == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    assert fields["MsgSignature"] == c.signature("1700000000", "nonce1", str(fields["Encrypt"]))
    assert c.decrypt_reply(reply.encode()) == "<xml>r</xml>"


def test_encrypt_reply_default_timestamp_is_now() -> None:
    before = int(time.time())
    fields = parse_xml(make().encrypt_reply("x", "n"))
    assert before <= int(str(fields["TimeStamp"])) <= int(time.time())


def test_encrypt_reply_keeps_non_canonical_timestamps_verbatim() -> None:
    c = make()
    for stamp in ("0170", "", "not-a-number"):
        reply = c.encrypt_reply("x", "n", stamp)
        assert parse_xml(reply)["TimeStamp"] == stamp
        assert c.decrypt_reply(reply) == "x"


def test_encrypt_reply_escapes_hostile_nonce() -> None:
    c = make()
    reply = c.encrypt_reply("x", "a]]><b>", "1")
    assert parse_xml(reply)["Nonce"] == "a]]><b>"
    assert c.decrypt_reply(reply) == "x"


def test_encrypt_callback_shape() -> None:
    c = make()
    params, body = c.encrypt_callback("<xml>m</xml>", "1700000000", "abc", agent_id="1000002")
    assert isinstance(body, bytes)
    fields = parse_xml(body)
    assert list(fields) == ["ToUserName", "Encrypt", "AgentID"]
    assert fields["ToUserName"] == CORP_ID and fields["AgentID"] == "1000002"
    assert b"<AgentID><![CDATA[1000002]]></AgentID>" in body
    assert params == {
        "msg_signature": c.signature("1700000000", "abc", str(fields["Encrypt"])),
        "timestamp": "1700000000",
        "nonce": "abc",
    }
    assert c.decrypt_message(params["msg_signature"], "1700000000", "abc", str(fields["Encrypt"])) == b"<xml>m</xml>"


def test_encrypt_callback_defaults() -> None:
    c = make()
    before = int(time.time())
    params, body = c.encrypt_callback("m")
    other, _ = c.encrypt_callback("m")
    assert "AgentID" not in parse_xml(body)
    assert len(params["nonce"]) == 10 and all(ch in ALNUM for ch in params["nonce"])
    assert params["nonce"] != other["nonce"]
    assert before <= int(params["timestamp"]) <= int(time.time())


def test_decrypt_reply_rejects_bad_xml_and_missing_fields() -> None:
    c = make()
    expect(-40002, lambda: c.decrypt_reply("not xml"), EnvelopeError)
    expect(-40002, lambda: c.decrypt_reply("<xml><Encrypt>abc</Encrypt></xml>"), EnvelopeError)
    expect(-40002, lambda: c.decrypt_reply('<!DOCTYPE x [<!ENTITY a "b">]><xml/>'), EnvelopeError)


def test_decrypt_reply_rejects_bad_signature() -> None:
    c = make()
    reply = c.encrypt_reply("x", "n", "1").replace("<Nonce><![CDATA[n]]>", "<Nonce><![CDATA[m]]>")
    expect(-40001, lambda: c.decrypt_reply(reply), SignatureError)


def test_decrypt_reply_rejects_other_receive_id() -> None:
    reply = make(receive_id="ww1").encrypt_reply("x", "n", "1")
    expect(-40005, lambda: make(receive_id="ww2").decrypt_reply(reply), ReceiveIdError)
