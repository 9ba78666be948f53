"""The synthetic shop photos the demo's members upload: real PNGs (a shop front in a few flat
colours), so a reviewer opening the console sees a picture rather than a broken image. Each
member's is their own (its awning colour and the sign's pattern come from their number): the
verification refuses to auto-approve a photo another member already sent, and one too small."""

from __future__ import annotations

import struct
import zlib

Colour = tuple[int, int, int]
WIDTH, HEIGHT = 480, 360
WALL, DOOR, WINDOW, SIGN = (236, 229, 214), (96, 72, 56), (150, 196, 222), (40, 40, 40)
AWNINGS = [(214, 69, 65), (58, 130, 90), (60, 96, 170), (220, 150, 40), (140, 70, 150)]
SIGN_BITS = 24  # the sign's squares: one per bit of the member's number


def shop_front_png(number: int = 0) -> bytes:
    awning = AWNINGS[number % len(AWNINGS)]
    return _png(WIDTH, HEIGHT, [_row(y, awning, number) for y in range(HEIGHT)])


def square_png(side: int, colour: Colour = (220, 40, 40)) -> bytes:
    """A plain square: what a careless or dishonest second account sends as its "shop"."""
    return _png(side, side, [bytes(colour) * side] * side)


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG of these rows of pixels (no filter)."""
    pixels = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(pixels, 6)) + _chunk(b"IEND", b""))


def _row(y: int, awning: Colour, number: int) -> bytes:
    """One row of pixels, built from runs of one colour (a few hundred photos a demo)."""
    if y < 90:  # a striped awning
        return b"".join(bytes(awning if n % 2 == 0 else WALL) * 48 for n in range(WIDTH // 48))
    runs: list[tuple[Colour, int]] = [(WALL, WIDTH)]
    if 100 <= y < 130:  # the sign over the door: a square per bit of the member's number
        runs = [(WALL, 48), *((SIGN if number >> bit & 1 else WALL, 16)
                              for bit in range(SIGN_BITS)), (WALL, WIDTH - 48 - SIGN_BITS * 16)]
    elif 144 <= y < 276:  # two windows, and the door below 180
        door = DOOR if y >= 180 else WALL
        runs = [(WALL, 48), (WINDOW, 120), (WALL, 24), (door, 96), (WALL, 24), (WINDOW, 120),
                (WALL, 48)]
    elif y >= 276:
        runs = [(WALL, 192), (DOOR, 96), (WALL, 192)]
    return b"".join(bytes(colour) * width for colour, width in runs)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
