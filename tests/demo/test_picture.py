"""The demo's shop photo is a PNG the verification form accepts and a browser can draw."""

from __future__ import annotations

import struct
import zlib

from app.faces.demo.picture import HEIGHT, WIDTH, shop_front_png
from app.verify.photos import image_type


def test_the_shop_photo_is_a_whole_png() -> None:
    png = shop_front_png()
    assert image_type(png[:12]) == "png"  # what the form checks
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (WIDTH, HEIGHT)
    length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    pixels = zlib.decompress(png[41:41 + length])
    assert len(pixels) == HEIGHT * (1 + WIDTH * 3)  # a filter byte and RGB per row
    assert png.endswith(b"IEND\xaeB`\x82")


def test_each_member_has_a_photo_of_their_own() -> None:
    """The verification sends a photo another member already sent to review (issue 14 item
    2): one picture for everyone sent the whole demo there."""
    assert len({shop_front_png(n) for n in range(200)}) == 200
