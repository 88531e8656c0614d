"""Small real media files made at test time."""

from __future__ import annotations

import io

from PIL import Image


def png_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, 4):  # some detail, so it is not a flat colour
        image.putpixel((x, height // 2), (255, 255, 255))
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 320, height: int = 200) -> bytes:
    buffer = io.BytesIO()
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


ELF_BYTES = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
