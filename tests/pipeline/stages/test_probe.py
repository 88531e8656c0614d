from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pipeline.stages.probe import ProbeError, probe_media
from tests.pipeline.stages.test_media_types import (
    ELF_HEAD,
    garbage,
    make_jpeg,
    make_mp3,
    make_pdf,
    make_png_rgba,
    make_video,
    make_wav,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("probe")
    video = make_video(root / "clip.mp4", black_seconds=1.0, pattern_seconds=1.0)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    return {
        "jpeg": make_jpeg(root / "plain.jpg", (200, 100)),
        "jpeg_rotated": make_jpeg(root / "rotated.jpg", (200, 100), orientation=6),
        "png": make_png_rgba(root / "alpha.png"),
        "video": video,
        "video_silent": make_video(
            root / "silent.mp4",
            black_seconds=0.2,
            pattern_seconds=0.6,
            audio=False,
            size="160x120",
            rotation=90,
        ),
        "truncated": truncated,
        "wav": make_wav(root / "tone.wav", seconds=1.0, rate=8000),
        "mp3": make_mp3(root / "tone.mp3", seconds=1.0),
        "pdf": make_pdf(root / "doc.pdf", pages=3),
    }


def test_image(media: dict[str, Path]) -> None:
    info = probe_media(media["jpeg"], "image", "image/jpeg")
    assert info["width"] == 200 and info["height"] == 100
    assert info["format"] == "JPEG" and info["mode"] == "RGB"
    assert info["orientation"] == 1 and not info["animated"] and not info["has_alpha"]


def test_image_exif_orientation_is_applied(media: dict[str, Path]) -> None:
    info = probe_media(media["jpeg_rotated"], "image", "image/jpeg")
    assert (info["width"], info["height"]) == (100, 200)
    assert info["orientation"] == 6


def test_image_alpha(media: dict[str, Path]) -> None:
    info = probe_media(media["png"], "image", "image/png")
    assert info["format"] == "PNG" and info["mode"] == "RGBA" and info["has_alpha"]
    assert (info["width"], info["height"]) == (300, 200)


def test_animated_gif(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (30, 20), color) for color in ("red", "green", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    info = probe_media(path, "image", "image/gif")
    assert info["frames"] == 3 and info["animated"]


def test_video(media: dict[str, Path]) -> None:
    info = probe_media(media["video"], "video", "video/mp4")
    assert info["duration"] == pytest.approx(2.0, abs=0.1)
    assert (info["width"], info["height"]) == (320, 240)
    assert info["fps"] == pytest.approx(25)
    assert info["codec"] == "h264" and info["format"] == "mp4"
    assert info["bitrate"] > 0
    assert info["rotation"] == 0
    assert info["frames"] == 50
    audio = info["audio"]
    assert audio["codec"] == "aac"
    assert audio["sample_rate"] == 44100 and audio["channels"] == 2
    assert audio["bitrate"] > 0


def test_video_without_audio_and_rotated(media: dict[str, Path]) -> None:
    info = probe_media(media["video_silent"], "video", "video/mp4")
    assert info["audio"] is None
    assert info["rotation"] == 90
    assert (info["width"], info["height"]) == (120, 160)  # as displayed


def test_truncated_video(media: dict[str, Path]) -> None:
    with pytest.raises(ProbeError) as caught:
        probe_media(media["truncated"], "video", "video/mp4")
    assert caught.value.reason


def test_audio_wav(media: dict[str, Path]) -> None:
    info = probe_media(media["wav"], "audio", "audio/x-wav")
    assert info["duration"] == pytest.approx(1.0, abs=0.01)
    assert info["codec"] == "pcm_s16le" and info["format"] == "wav"
    assert info["sample_rate"] == 8000 and info["channels"] == 1
    assert info["bitrate"] == 128000


def test_audio_mp3(media: dict[str, Path]) -> None:
    info = probe_media(media["mp3"], "audio", "audio/mpeg")
    assert info["duration"] == pytest.approx(1.0, abs=0.1)
    assert info["codec"] == "mp3" and info["format"] == "mp3"
    assert info["sample_rate"] == 44100 and info["channels"] == 1
    assert info["bitrate"] == pytest.approx(128000, rel=0.1)


def test_video_as_audio_needs_an_audio_stream(media: dict[str, Path]) -> None:
    info = probe_media(media["video"], "audio", "audio/mp4")
    assert info["codec"] == "aac"
    with pytest.raises(ProbeError, match="no audio"):
        probe_media(media["video_silent"], "audio", "audio/mp4")


def test_pdf(media: dict[str, Path]) -> None:
    info = probe_media(media["pdf"], "document", "application/pdf")
    assert info["pages"] == 3
    assert info["title"] == "Quarterly Report" and info["author"] == "Jane Doe"
    assert info["creation_date"] == "2024-01-15"
    assert info["encrypted"] is False


def test_encrypted_pdf(media: dict[str, Path], tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(media["pdf"]))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as out:
        writer.write(out)
    assert probe_media(path, "document", "application/pdf") == {"pages": None, "encrypted": True}


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "lines", "bom"),
    [
        ("Hello\nWorld\n", "utf-8", 12, 2, False),
        ("Grüße\n世界", "utf-8", 8, 2, False),
        ("one line", "utf-8-sig", 8, 1, True),
        ("\ufeffa\nb\nc", "utf-16-le", 5, 3, True),
        ("", "utf-8", 0, 0, False),
    ],
)
def test_text(
    tmp_path: Path, text: str, encoding: str, characters: int, lines: int, bom: bool
) -> None:
    path = tmp_path / "script.txt"
    path.write_bytes(text.encode(encoding) if text else b"")
    if not text:
        with pytest.raises(ProbeError):
            probe_media(path, "document", "text/plain")
        return
    info = probe_media(path, "document", "text/plain")
    assert info["characters"] == characters and info["lines"] == lines and info["bom"] is bom
    assert info["encoding"] == ("utf-8" if encoding == "utf-8-sig" else encoding)


def test_text_invalid_later_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"fine ascii\n" * 2000 + b"caf\xe9\n")
    with pytest.raises(ProbeError, match="invalid utf-8"):
        probe_media(path, "document", "text/plain")


@pytest.mark.parametrize(
    ("content", "file_type", "mime"),
    [
        (ELF_HEAD, "image", "image/png"),
        (garbage(), "video", "video/mp4"),
        (garbage(), "audio", "audio/mpeg"),
        (b"%PDF-1.4\nnot really", "document", "application/pdf"),
        (ELF_HEAD, "document", "text/plain"),
        (b"x", "spreadsheet", "application/x"),
    ],
)
def test_unparseable(tmp_path: Path, content: bytes, file_type: str, mime: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(ProbeError):
        probe_media(path, file_type, mime)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProbeError):
        probe_media(tmp_path / "nope", "image", "image/png")
