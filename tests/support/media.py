"""Small real media files made at test time."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw


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


def striped_jpeg(path: Path, width: int, height: int, every: int) -> Path:
    """A blue photo with yellow vertical stripes ``every`` pixels, so that a pan
    or a zoom over it shows."""
    image = Image.new("RGB", (width, height), "#336699")
    draw = ImageDraw.Draw(image)
    for x in range(0, width, every):
        draw.line((x, 0, x, height), fill="yellow", width=6)
    image.save(path, quality=90)
    return path


ELF_BYTES = b"\x7fELF\x02\x01\x01" + b"\x00" * 200


def h264_mp4(
    path: Path, *, height: int, seconds: float = 9.0, gop_s: int = 2, kbps: int | None = None
) -> Path:
    """A test-pattern H.264/AAC MP4 with a fixed GOP (like the renders' renditions);
    ``kbps`` caps the video bitrate (else the encoder's fast default, much higher)."""
    import subprocess

    import imageio_ffmpeg

    width = height * 16 // 9 // 2 * 2
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            str(25 * gop_s),
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
            *(
                ["-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k"]
                if kbps
                else []
            ),
            str(path),
        ],
        check=True,
    )
    return path
