"""The synthetic shop photo the demo's members upload: a real PNG (a shop front in a few flat
colours), so a reviewer opening the console sees a picture rather than a broken image."""

from __future__ import annotations

import struct
import zlib

WIDTH, HEIGHT = 160, 120
WALL, AWNING, DOOR, WINDOW = (236, 229, 214), (214, 69, 65), (96, 72, 56), (150, 196, 222)


def shop_front_png() -> bytes:
    rows = b"".join(b"\x00" + bytes(c for x in range(WIDTH) for c in _pixel(x, y))
                    for y in range(HEIGHT))
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))


def _pixel(x: int, y: int) -> tuple[int, int, int]:
    if y < 30:  # a striped awning
        return AWNING if (x // 16) % 2 == 0 else WALL
    if 64 <= x < 96 and y >= 60:
        return DOOR
    if (16 <= x < 56 or 104 <= x < 144) and 48 <= y < 92:
        return WINDOW
    return WALL


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
