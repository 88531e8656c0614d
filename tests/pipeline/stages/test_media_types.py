"""Content-based type detection.  The sample builders here are shared with the
probe and thumbnail tests (real files, generated on the fly)."""

from __future__ import annotations

import io
import math
import random
import struct
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from pipeline.stages.media_types import (
    HEAD_BYTES,
    MediaType,
    check_declared_type,
    detect_file,
    detect_media_type,
    require_supported,
    text_encoding,
)
from t2m.errors import UnsupportedMediaType, ValidationFailed

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
EXIF_ORIENTATION = 0x0112


# -- sample builders (used by test_probe.py and test_thumbnails.py too) -----------------
def ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=60,
    )


def make_jpeg(path: Path, size: tuple[int, int] = (200, 100), orientation: int = 1) -> Path:
    """Left half red, right half blue; optional EXIF orientation."""
    width, height = size
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    if orientation != 1:
        exif[EXIF_ORIENTATION] = orientation
    image.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def make_png_rgba(path: Path) -> Path:
    """Opaque green square in the middle of a fully transparent 300x200 canvas."""
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    image.paste((0, 200, 0, 255), (100, 50, 200, 150))
    image.save(path, "PNG")
    return path


def make_video(
    path: Path,
    *,
    black_seconds: float = 1.0,
    pattern_seconds: float = 2.0,
    size: str = "320x240",
    audio: bool = True,
    rotation: int | None = None,
) -> Path:
    """Black for ``black_seconds``, then a colourful test pattern; AAC tone."""
    total = black_seconds + pattern_seconds
    args = [
        "-f", "lavfi", "-i", f"color=c=black:s={size}:r=25:d={black_seconds}",
        "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={pattern_seconds}",
    ]  # fmt: skip
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={total}"]
    args += ["-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]"]
    if audio:
        args += ["-map", "2:a", "-c:a", "aac", "-b:a", "96k", "-ac", "2"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "250"]
    if rotation is None:
        ffmpeg(*args, str(path))
    else:
        plain = path.with_name("unrotated-" + path.name)
        ffmpeg(*args, str(plain))
        ffmpeg("-display_rotation", str(rotation), "-i", str(plain), "-c", "copy", str(path))
    return path


def make_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def make_mp3(path: Path, seconds: float = 1.0, cover: Path | None = None) -> Path:
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    if cover is None:
        ffmpeg(*args, "-c:a", "libmp3lame", "-b:a", "128k", str(path))
    else:
        ffmpeg(*args, "-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame",
               "-b:a", "128k", "-c:v", "copy", "-disposition:v", "attached_pic",
               "-id3v2_version", "3", str(path))  # fmt: skip
    return path


def make_pdf(
    path: Path, pages: int = 2, title: str = "Quarterly Report", author: str = "Jane Doe"
) -> Path:
    """A US-letter-ish PDF: a black square on white on every page, with metadata."""
    from pypdf import PdfReader, PdfWriter

    sheets = []
    for index in range(pages):
        sheet = Image.new("RGB", (612, 792), "white")
        sheet.paste((0, 0, 0), (100 + index * 10, 100, 400, 400))
        sheets.append(sheet)
    buffer = io.BytesIO()
    sheets[0].save(buffer, "PDF", save_all=True, append_images=sheets[1:], resolution=72)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.add_metadata({"/Title": title, "/Author": author, "/CreationDate": "D:20240115103000Z"})
    with open(path, "wb") as out:
        writer.write(out)
    return path


ELF_HEAD = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
PE_HEAD = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200
ZIP_HEAD = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 200
GZIP_HEAD = b"\x1f\x8b\x08\x00" + b"\x00" * 200


def garbage(size: int = 4096) -> bytes:
    return random.Random(1234).randbytes(size)


# -- tests ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media-types")
    made = {
        "jpeg": make_jpeg(root / "photo.jpg"),
        "png": make_png_rgba(root / "alpha.png"),
        "mp4": make_video(root / "clip.mp4", black_seconds=0.2, pattern_seconds=0.4),
        "wav": make_wav(root / "tone.wav", seconds=0.2),
        "mp3": make_mp3(root / "tone.mp3", seconds=0.3),
        "pdf": make_pdf(root / "doc.pdf", pages=1),
    }
    for name, fmt in (("gif", "GIF"), ("webp", "WEBP"), ("bmp", "BMP"), ("tiff", "TIFF")):
        path = root / f"image.{name}"
        Image.new("RGB", (20, 10), "red").save(path, fmt)
        made[name] = path
    return made


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jpeg", MediaType("image", "image/jpeg")),
        ("png", MediaType("image", "image/png")),
        ("gif", MediaType("image", "image/gif")),
        ("webp", MediaType("image", "image/webp")),
        ("bmp", MediaType("image", "image/bmp")),
        ("tiff", MediaType("image", "image/tiff")),
        ("mp4", MediaType("video", "video/mp4")),
        ("wav", MediaType("audio", "audio/x-wav")),
        ("mp3", MediaType("audio", "audio/mpeg")),
        ("pdf", MediaType("document", "application/pdf")),
    ],
)
def test_binary_formats(samples: dict[str, Path], name: str, expected: MediaType) -> None:
    head = samples[name].read_bytes()[:HEAD_BYTES]
    assert detect_media_type(head) == expected
    assert detect_file(samples[name]) == expected
    file_type, mime = expected  # a plain (file_type, mime) pair
    assert (file_type, mime) == tuple(detect_media_type(head) or ())


def test_pdf_with_leading_junk() -> None:
    assert detect_media_type(b"\r\n\r\n%PDF-1.7\n...") == ("document", "application/pdf")


@pytest.mark.parametrize(
    ("head", "filename", "mime"),
    [
        (b"Hello, world.\nSecond line.\n", None, "text/plain"),
        ("Grüße, 世界 — ok\n".encode(), "notes.txt", "text/plain"),
        (b"# Title\n\nSome *markdown*.\n", "README.md", "text/markdown"),
        (b"a,b,c\n1,2,3\n", "data.csv", "text/csv"),
        (b'{"scenes": [1, 2, 3]}', None, "application/json"),
        (b'{"scenes": [1, 2, 3]}', "script.json", "application/json"),
        (b"<html><script>alert(1)</script></html>", "page.html", "text/plain"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "x.svg", "text/plain"),
        ("\ufeffBOM text\n".encode(), None, "text/plain"),
        ("\ufeffUTF-16 text\n".encode("utf-16-le"), None, "text/plain"),
        ("\ufeffUTF-16 text\n".encode("utf-16-be"), None, "text/plain"),
        ("\ufeffUTF-32 text\n".encode("utf-32-le"), None, "text/plain"),
        # Text that starts like a binary signature is still text.
        (b"BMW quarterly report\n", None, "text/plain"),
        (b"ID3 tags explained\n", "id3.md", "text/markdown"),
        (b"OggS and fLaC are containers\n", None, "text/plain"),
        (b"GIF89a is a format\n", None, "text/plain"),
        (b"MZ: initials\n", None, "text/plain"),
    ],
)
def test_text(head: bytes, filename: str | None, mime: str) -> None:
    assert detect_media_type(head, filename) == MediaType("document", mime)


def test_text_head_cut_inside_a_character() -> None:
    text = ("é" * HEAD_BYTES).encode()  # 2 bytes each: the head ends mid-character
    assert detect_media_type(text[: HEAD_BYTES - 1]) == ("document", "text/plain")


def test_text_encodings() -> None:
    assert text_encoding(b"plain") == "utf-8"
    assert text_encoding("\ufeffx".encode()) == "utf-8-sig"
    assert text_encoding("\ufeffx".encode("utf-16-le")) == "utf-16-le"
    assert text_encoding(b"\x00\x01\x02") is None


@pytest.mark.parametrize(
    "head",
    [
        ELF_HEAD,
        PE_HEAD,
        ZIP_HEAD,
        GZIP_HEAD,
        b"",
        garbage(),
        b"text with a NUL\x00 inside",
        "Latin-1 caf\xe9 not UTF-8".encode("latin-1"),
        bytes(range(1, 32)) * 20,  # control characters
    ],
    ids=["elf", "pe", "zip", "gzip", "empty", "garbage", "nul", "latin1", "controls"],
)
def test_unsupported(head: bytes) -> None:
    assert detect_media_type(head) is None
    with pytest.raises(UnsupportedMediaType):
        require_supported(head)


def test_check_declared_type() -> None:
    image = MediaType("image", "image/png")
    assert check_declared_type(None, image) == image
    assert check_declared_type("", image) == image
    assert check_declared_type(" Image ", image) == image
    with pytest.raises(ValidationFailed) as caught:
        check_declared_type("video", image)
    assert "does not match" in caught.value.details["file_type"][0]
    with pytest.raises(ValidationFailed) as caught:
        check_declared_type("spreadsheet", image)
    assert caught.value.details == {
        "file_type": ["Invalid file type. Must be one of: document, image, video, audio"]
    }
    # A sound-only MP4/WebM may be declared audio.
    assert check_declared_type("audio", MediaType("video", "video/mp4")) == ("audio", "audio/mp4")
    with pytest.raises(ValidationFailed):
        check_declared_type("video", MediaType("audio", "audio/mpeg"))
